# This file is internal to the snowrpa.robot_certs collection and may change in any release.
"""The common end of every Python module: run the backend, report its outcome or its one-line error."""

from __future__ import annotations

import typing as t

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import _pki
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    RobotCertsError,
)

# A backend's constraint lists and the keyword each goes by in AnsibleModule, ArgumentSpecValidator
# and a suboption's spec.
_CONSTRAINTS = (
    ("mutually_exclusive", "MUTUALLY_EXCLUSIVE"),
    ("required_together", "REQUIRED_TOGETHER"),
    ("required_one_of", "REQUIRED_ONE_OF"),
    ("required_if", "REQUIRED_IF"),
    ("required_by", "REQUIRED_BY"),
)


def spec_constraints(backend: t.Any) -> dict[str, t.Any]:
    """The non-empty constraint lists a backend module defines, by keyword."""
    found = {key: getattr(backend, name, None) for key, name in _CONSTRAINTS}
    return {key: value for key, value in found.items() if value}


def require_cryptography(module: AnsibleModule) -> None:
    """Fail the module, naming the minimum version, when cryptography cannot be imported."""
    if not _pki.HAS_CRYPTOGRAPHY:
        module.fail_json(
            msg=missing_required_lib(
                f"cryptography >= {_pki.MINIMUM_CRYPTOGRAPHY_VERSION}"
            ),
            exception=str(_pki.CRYPTOGRAPHY_IMPORT_ERROR),
        )


def run_module(module: AnsibleModule, step: t.Callable[[], tuple[t.Any, ...]]) -> None:
    """Run STEP, which returns (changed, result, diff) or (changed, result, diff, warnings), and exit.

    A RobotCertsError becomes fail_json with its one-line message; warnings come from the fourth
    item or from result["warnings"]; the diff is returned only in diff mode.
    """
    try:
        outcome = step()
    except RobotCertsError as exc:
        module.fail_json(msg=str(exc))

    changed, result, diff = outcome[:3]
    warnings = list(outcome[3]) if len(outcome) > 3 else []
    warnings += result.pop("warnings", [])
    for warning in warnings:
        module.warn(warning)
    if module._diff and diff is not None:
        result["diff"] = diff
    module.exit_json(changed=changed, **result)


__all__ = ("require_cryptography", "run_module", "spec_constraints")
