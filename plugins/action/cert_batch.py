# Copyright: contributors to the snowrpa.robot_certs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run cert_batch in the controller process; the documentation lives in plugins/modules/cert_batch.py."""

from __future__ import annotations

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import _cert_batch
from ansible_collections.snowrpa.robot_certs.plugins.plugin_utils._controller_action import (
    ControllerAction,
)


class ActionModule(ControllerAction):
    BACKEND = _cert_batch
    RETURN_INVOCATION = False
