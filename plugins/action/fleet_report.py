# Copyright: contributors to the snowrpa.robot_certs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run fleet_report in the controller process; the documentation lives in plugins/modules/fleet_report.py."""

from __future__ import annotations

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import _report
from ansible_collections.snowrpa.robot_certs.plugins.plugin_utils._controller_action import (
    ControllerAction,
)


class ActionModule(ControllerAction):
    BACKEND = _report
