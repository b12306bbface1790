# Copyright: contributors to the snowrpa.robot_certs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Open the PKCS#12 on the controller, decide the import and the encoding the host can read, and run
the PowerShell module once."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    RobotCertsError,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._files import (
    read_file,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._win_import import (
    CHAIN_MODES,
    KEY_STORAGES,
    STORE_LOCATIONS,
    ImportPlan,
    Pkcs12Payload,
    build_import_plan,
    build_module_args,
    check_become,
    choose_payload,
    decode_pkcs12_content,
    interpret_module_result,
    open_pkcs12,
    parse_os_build,
)

MODULE_NAME = "snowrpa.robot_certs.win_cert_import"
NO_LOG_OPTIONS = ("pkcs12_content", "pkcs12_passphrase")
MASK = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "pkcs12_path": {"type": "path"},
    "pkcs12_content": {"type": "str", "no_log": True},
    "pkcs12_passphrase": {"type": "str", "no_log": True},
    "purpose": {"type": "str", "choices": ["client_auth", "code_signing"]},
    "store_location": {
        "type": "str",
        "default": "LocalMachine",
        "choices": list(STORE_LOCATIONS),
    },
    "store_name": {"type": "str", "default": "My"},
    "key_storage": {"type": "str", "default": "auto", "choices": list(KEY_STORAGES)},
    "exportable": {"type": "bool", "default": False},
    "friendly_name": {"type": "str"},
    "chain": {"type": "str", "default": "ca", "choices": list(CHAIN_MODES)},
    "remove_superseded": {"type": "bool", "default": False},
    "key_readers": {"type": "list", "elements": "str", "default": []},
    "key_readers_exact": {"type": "bool", "default": False},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
    "thumbprint": {"type": "str"},
    "target_os_build": {"type": "int"},
}
MUTUALLY_EXCLUSIVE = [["pkcs12_path", "pkcs12_content"]]
REQUIRED_IF = [
    ["state", "present", ["pkcs12_path", "pkcs12_content"], True],
    ["state", "present", ["purpose"]],
    ["state", "absent", ["thumbprint", "pkcs12_path", "pkcs12_content"], True],
]


def safe_invocation(params: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The task's options as the user gave them, with every secret replaced by the no_log mask."""
    return {
        key: (MASK if key in NO_LOG_OPTIONS and value is not None else value)
        for key, value in params.items()
    }


def host_os_build(
    params: t.Mapping[str, t.Any], task_vars: t.Mapping[str, t.Any]
) -> int | None:
    """target_os_build if given, else the build from gathered facts of a Windows host."""
    if params.get("target_os_build") is not None:
        return int(params["target_os_build"])
    facts = task_vars.get("ansible_facts") or {}
    if (facts.get("os_family") or task_vars.get("ansible_os_family")) != "Windows":
        return None
    return parse_os_build(
        facts.get("distribution_version")
        or task_vars.get("ansible_distribution_version")
    )


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def _read_pkcs12(self, params: t.Mapping[str, t.Any]) -> tuple[bytes | None, str]:
        if params.get("pkcs12_content") is not None:
            return decode_pkcs12_content(params["pkcs12_content"]), "pkcs12_content"
        if params.get("pkcs12_path") is None:
            return None, ""
        try:
            path = self._find_needle("files", params["pkcs12_path"])
        except AnsibleError:
            path = params["pkcs12_path"]
        return read_file(
            path, what="pkcs12_path"
        ), f"pkcs12_path {params['pkcs12_path']!r}"

    def _prepare(
        self, params: t.Mapping[str, t.Any], task_vars: t.Mapping[str, t.Any]
    ) -> tuple[ImportPlan | None, Pkcs12Payload | None, dict[str, t.Any]]:
        data, source = self._read_pkcs12(params)
        passphrase = params.get("pkcs12_passphrase")
        present = params["state"] == "present"
        plan = payload = None
        if data is not None:
            contents = open_pkcs12(data, passphrase, source=source, require_key=present)
            plan = build_import_plan(
                data,
                passphrase,
                source=source,
                purpose=params.get("purpose") if present else None,
                store_location=params["store_location"],
                chain=params["chain"],
                friendly_name=params.get("friendly_name"),
                for_removal=not present,
                contents=contents,
            )
            if present:
                become = getattr(self._connection, "become", None)
                check_become(
                    store_location=params["store_location"],
                    key_storage=params["key_storage"],
                    become_method=getattr(become, "name", None) if become else None,
                )
                payload = choose_payload(
                    data,
                    contents,
                    plan,
                    passphrase=passphrase,
                    build=host_os_build(params, task_vars),
                    source=source,
                )
        module_args = build_module_args(
            plan, params, payload=payload, passphrase=passphrase
        )
        return plan, payload, module_args

    def run(
        self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None
    ) -> dict[str, t.Any]:
        self._supports_check_mode = True
        self._supports_async = False
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp

        params = self.validate_argument_spec(
            argument_spec=ARGUMENT_SPEC,
            mutually_exclusive=MUTUALLY_EXCLUSIVE,
            required_if=REQUIRED_IF,
        )[1]
        invocation = {"module_args": safe_invocation(params)}

        try:
            plan, payload, module_args = self._prepare(params, task_vars)
        except RobotCertsError as exc:
            result.update(
                failed=True, changed=False, msg=str(exc), invocation=invocation
            )
            return result

        answer = self._execute_module(
            module_name=MODULE_NAME, module_args=module_args, task_vars=task_vars
        )
        result.update(interpret_module_result(answer, plan=plan, payload=payload))
        result["invocation"] = invocation
        return result
