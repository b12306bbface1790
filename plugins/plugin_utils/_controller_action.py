# This file is internal to the snowrpa.robot_certs collection and may change in any release.
"""Base for action plugins whose whole work happens in the controller process."""

from __future__ import annotations

import types
import typing as t

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase

from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    RobotCertsError,
    one_line,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._module_runner import (
    spec_constraints,
)


class ControllerAction(ActionBase):
    """Validate the task arguments against the module's spec, run the backend in process, report.

    Subclasses set BACKEND to a module_utils module that defines ARGUMENT_SPEC, the constraint
    lists (MUTUALLY_EXCLUSIVE, REQUIRED_TOGETHER, REQUIRED_ONE_OF, REQUIRED_IF, REQUIRED_BY) and
    run(params, check_mode=...) -> (changed, result, diff, warnings).
    """

    BACKEND: t.ClassVar[types.ModuleType]
    # False leaves the options out of the result (a batch's options are the size of the fleet).
    RETURN_INVOCATION: t.ClassVar[bool] = True
    TRANSFERS_FILES = False
    # Nothing runs on the target, so no connection is opened for it (a fleet run stays on the controller).
    _requires_connection = False
    _supports_check_mode = True

    def run(
        self, tmp: str | None = None, task_vars: dict[str, t.Any] | None = None
    ) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        backend = self.BACKEND
        validator = ArgumentSpecValidator(
            backend.ARGUMENT_SPEC, **spec_constraints(backend)
        )
        validation = validator.validate(dict(self._task.args))
        no_log_values = validation._no_log_values
        invocation = {
            "module_args": remove_values(validation.validated_parameters, no_log_values)
        }
        if validation.error_messages:
            # The unsupported-option errors get the prefix Ansible's own modules give them, the others not.
            message = one_line(
                "; ".join(
                    f"Unsupported parameters for ({self._task.action}) module: {error}"
                    if isinstance(error, UnsupportedError)
                    else str(error)
                    for error in validation.errors
                )
            )
            result.update(
                failed=True,
                msg=remove_values(message, no_log_values),
                invocation=invocation,
            )
            return result

        try:
            changed, data, diff, warnings = backend.run(
                validation.validated_parameters, check_mode=bool(self._task.check_mode)
            )
        except RobotCertsError as exc:
            result.update(
                failed=True,
                changed=False,
                msg=remove_values(one_line(str(exc)), no_log_values),
                invocation=invocation,
            )
            return result

        result.update(data)
        result["changed"] = changed
        if self._task.diff and diff:
            result["diff"] = diff
        all_warnings = list(validation._warnings or []) + list(warnings)
        if all_warnings:
            result["warnings"] = [
                w["warning"] if isinstance(w, dict) and "warning" in w else w
                for w in all_warnings
            ]
        if self.RETURN_INVOCATION:
            result["invocation"] = invocation
        return remove_values(result, no_log_values)


__all__ = ("ControllerAction",)
