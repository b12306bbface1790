# Copyright: contributors to the snowrpa.robot_certs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the fleet audit report in the controller process: it reads controller files and writes the report there."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    RobotCertsError,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._report import (
    ARGUMENT_SPEC,
    run,
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(
        self, tmp: str | None = None, task_vars: dict[str, t.Any] | None = None
    ) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp

        validation, params = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        del validation
        try:
            outcome = run(params, check_mode=bool(self._task.check_mode))
        except RobotCertsError as exc:
            raise AnsibleActionFail(str(exc)) from None

        diff = outcome.pop("diff")
        result.update(outcome)
        if self._task.diff and diff and outcome["changed"]:
            result["diff"] = diff
        return result
