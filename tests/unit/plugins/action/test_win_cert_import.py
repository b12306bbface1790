"""The win_cert_import action plugin: what it sends to the host and what the task returns."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import typing as t
from pathlib import Path
from unittest.mock import MagicMock

import pytest
from ansible.errors import AnsibleActionFail
from ansible.parsing.dataloader import DataLoader

sys.path.insert(0, str(Path(__file__).parents[1] / "module_utils"))

import win_fixtures as fx  # noqa: E402

from ansible_collections.snowrpa.robot_certs.plugins.action.win_cert_import import (  # noqa: E402
    MASK,
    ActionModule,
)

MODULE = "snowrpa.robot_certs.win_cert_import"


@pytest.fixture(scope="module")
def pki() -> fx.Pki:
    return fx.make_pki()


@pytest.fixture(scope="module")
def bundle(pki: fx.Pki) -> dict[str, t.Any]:
    key, leaf = pki.leaf("robot-07")
    return {
        "key": key,
        "leaf": leaf,
        "legacy": fx.p12(key, leaf, [pki.inter, pki.root], profile="legacy"),
        "modern": fx.p12(key, leaf, [pki.inter, pki.root], profile="modern"),
        "thumbprint": leaf.fingerprint(fx.hashes.SHA1()).hex().upper(),
    }


def make_action(
    args: dict[str, t.Any],
    search_dir: Path,
    *,
    become: str | None = None,
    check_mode: bool = False,
) -> ActionModule:
    task = MagicMock()
    task.args = args
    task.async_val = 0
    task.check_mode = check_mode
    task.action = MODULE
    task.get_search_path.return_value = [str(search_dir)]
    connection = MagicMock()
    connection._shell.tmpdir = "C:\\Windows\\TEMP\\ansible-tmp"
    if become is None:
        connection.become = None
    else:
        connection.become = MagicMock()
        connection.become.name = become
    action = ActionModule(
        task, connection, MagicMock(), DataLoader(), MagicMock(), None
    )
    action._execute_module = MagicMock()  # type: ignore[method-assign]
    return action


def sent_args(action: ActionModule) -> dict[str, t.Any]:
    action._execute_module.assert_called_once()  # type: ignore[attr-defined]
    call = action._execute_module.call_args  # type: ignore[attr-defined]
    assert call.kwargs["module_name"] == MODULE
    return call.kwargs["module_args"]


def assert_no_secret(result: dict[str, t.Any], bundle: dict[str, t.Any]) -> None:
    text = json.dumps(result, default=str)
    assert fx.PASSPHRASE not in text
    for data in (bundle["legacy"], bundle["modern"]):
        assert base64.b64encode(data).decode()[:60] not in text
    key_der = bundle["key"].private_bytes(
        fx.serialization.Encoding.DER,
        fx.serialization.PrivateFormat.PKCS8,
        fx.serialization.NoEncryption(),
    )
    assert base64.b64encode(key_der).decode()[:60] not in text


@pytest.fixture
def p12_file(tmp_path: Path, bundle: dict[str, t.Any]) -> Path:
    files = tmp_path / "files"
    files.mkdir()
    (files / "robot.p12").write_bytes(bundle["legacy"])
    (files / "robot-aes.p12").write_bytes(bundle["modern"])
    return tmp_path


BASE = {
    "pkcs12_path": "robot.p12",
    "pkcs12_passphrase": fx.PASSPHRASE,
    "purpose": "client_auth",
}


class TestWhatIsSent:
    def test_pfx_bytes_and_plan_ride_in_the_module_args(self, p12_file, bundle):
        action = make_action(
            dict(BASE, chain="all", key_readers=["NT SERVICE\\Robot"]), p12_file
        )
        action._execute_module.return_value = {
            "changed": True,
            "thumbprint": bundle["thumbprint"],
        }

        result = action.run(task_vars={})

        args = sent_args(action)
        assert base64.b64decode(args["_pkcs12_content"]) == bundle["legacy"]
        assert args["_pkcs12_passphrase"] == fx.PASSPHRASE
        assert args["thumbprint"] == bundle["thumbprint"]
        assert args["store_location"] == "LocalMachine"
        assert args["key_storage"] == "auto"
        assert args["exportable"] is False
        assert args["key_readers"] == ["NT SERVICE\\Robot"]
        assert [
            (p["role"], p["store_location"], p["store_name"])
            for p in args["_plan"]["placements"]
        ] == [
            ("intermediate", "LocalMachine", "CA"),
            ("root", "LocalMachine", "Root"),
        ]
        # Controller-only options never reach the host.
        assert not {
            "pkcs12_path",
            "pkcs12_passphrase",
            "purpose",
            "chain",
            "target_os_build",
        } & set(args)
        assert result["changed"] is True
        assert_no_secret(result, bundle)

    def test_content_option_is_decoded_before_sending(self, tmp_path, bundle):
        content = base64.encodebytes(bundle["legacy"]).decode()
        action = make_action(
            {
                "pkcs12_content": content,
                "pkcs12_passphrase": fx.PASSPHRASE,
                "purpose": "client_auth",
            },
            tmp_path,
        )
        action._execute_module.return_value = {"changed": False}

        result = action.run(task_vars={})

        assert (
            base64.b64decode(sent_args(action)["_pkcs12_content"]) == bundle["legacy"]
        )
        assert result["invocation"]["module_args"]["pkcs12_content"] == MASK
        assert result["invocation"]["module_args"]["pkcs12_passphrase"] == MASK
        assert_no_secret(result, bundle)

    def test_invocation_is_the_users_options_without_secrets(self, p12_file, bundle):
        action = make_action(dict(BASE), p12_file)
        action._execute_module.return_value = {
            "changed": False,
            "invocation": {"module_args": {"_pkcs12_content": "********", "_plan": {}}},
        }

        result = action.run(task_vars={})

        module_args = result["invocation"]["module_args"]
        assert module_args["pkcs12_path"] == "robot.p12"
        assert module_args["pkcs12_passphrase"] == MASK
        assert "_pkcs12_content" not in module_args
        assert "_plan" not in module_args

    def test_absent_by_thumbprint_needs_no_pfx(self, tmp_path, bundle):
        action = make_action(
            {"state": "absent", "thumbprint": bundle["thumbprint"].lower()}, tmp_path
        )
        action._execute_module.return_value = {
            "changed": True,
            "thumbprint": bundle["thumbprint"],
        }

        result = action.run(task_vars={})

        args = sent_args(action)
        assert args["state"] == "absent"
        assert args["thumbprint"] == bundle["thumbprint"]
        assert "_pkcs12_content" not in args
        assert result["changed"] is True


class TestFailsBeforeContactingTheHost:
    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (dict(BASE, pkcs12_passphrase="wrong"), "wrong pkcs12 passphrase"),
            (dict(BASE, purpose="code_signing"), "does not allow code_signing"),
            (
                dict(BASE, pkcs12_path="missing.p12"),
                "pkcs12_path 'missing.p12' does not exist",
            ),
            (
                {"pkcs12_content": "not base64 !", "purpose": "client_auth"},
                "pkcs12_content is not valid base64",
            ),
            (
                dict(BASE, store_location="CurrentUser"),
                "become: true, become_method: runas",
            ),
        ],
    )
    def test_preparation_errors(self, p12_file, bundle, args, message):
        action = make_action(args, p12_file)

        result = action.run(task_vars={})

        assert result["failed"] is True
        assert message in result["msg"]
        assert "\n" not in result["msg"]
        action._execute_module.assert_not_called()
        assert_no_secret(result, bundle)

    def test_empty_passphrase_modern_file_for_an_old_build(self, tmp_path, bundle):
        # cryptography refuses to write an empty password; openssl 3 writes an AES file with one.
        (tmp_path / "leaf.pem").write_bytes(fx.pem(bundle["leaf"]))
        (tmp_path / "key.pem").write_bytes(
            bundle["key"].private_bytes(
                fx.serialization.Encoding.PEM,
                fx.serialization.PrivateFormat.PKCS8,
                fx.serialization.NoEncryption(),
            )
        )
        subprocess.run(
            ["openssl", "pkcs12", "-export", "-in", str(tmp_path / "leaf.pem")]
            + ["-inkey", str(tmp_path / "key.pem"), "-passout", "pass:"]
            + ["-out", str(tmp_path / "nopass.p12")],
            check=True,
            capture_output=True,
        )
        content = base64.b64encode((tmp_path / "nopass.p12").read_bytes()).decode()
        action = make_action(
            {
                "pkcs12_content": content,
                "purpose": "client_auth",
                "target_os_build": 14393,
            },
            tmp_path,
        )

        result = action.run(task_vars={})

        assert result["failed"] is True
        assert "has no passphrase to re-encode it" in result["msg"]
        action._execute_module.assert_not_called()


def openssl_info(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "sent.p12"
    path.write_bytes(data)
    done = subprocess.run(
        ["openssl", "pkcs12", "-in", str(path), "-info", "-noout"]
        + ["-passin", f"pass:{fx.PASSPHRASE}"],
        capture_output=True,
        text=True,
        check=True,
    )
    path.unlink()
    return done.stderr


WIN2016 = {
    "ansible_facts": {"os_family": "Windows", "distribution_version": "10.0.14393.0"}
}
WIN2019 = {
    "ansible_facts": {"os_family": "Windows", "distribution_version": "10.0.17763.0"}
}


class TestOneRunForEveryBuild:
    """A modern file reaches every host in one module run: re-encoded, as it is, or both."""

    @pytest.mark.parametrize(
        ("extra", "task_vars"),
        [({"target_os_build": 14393}, {}), ({}, WIN2016)],
        ids=["option", "facts"],
    )
    def test_known_old_build_gets_a_legacy_reencoding(
        self, p12_file, bundle, tmp_path, extra, task_vars
    ):
        action = make_action(dict(BASE, pkcs12_path="robot-aes.p12", **extra), p12_file)
        action._execute_module.return_value = {"changed": True, "profile": "legacy"}
        before = sorted(p.name for p in p12_file.rglob("*"))

        result = action.run(task_vars=task_vars)

        args = sent_args(action)
        sent = base64.b64decode(args["_pkcs12_content"])
        assert sent != bundle["modern"]
        info = openssl_info(sent, tmp_path)
        assert "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC" in info
        assert "MAC: sha1" in info
        assert "_pkcs12_legacy_content" not in args
        assert (args["_plan"]["profile"], args["_plan"]["min_build"]) == ("legacy", 0)
        assert args["thumbprint"] == bundle["thumbprint"]
        assert (result["profile"], result["reencoded"]) == ("legacy", True)
        # The re-encoding lives in memory only: no file appeared beside the original.
        assert sorted(p.name for p in p12_file.rglob("*")) == before
        assert base64.b64encode(sent).decode()[:60] not in json.dumps(result)
        assert_no_secret(result, bundle)

    def test_known_new_build_gets_the_file_as_it_is(self, p12_file, bundle):
        action = make_action(dict(BASE, pkcs12_path="robot-aes.p12"), p12_file)
        action._execute_module.return_value = {"changed": True, "profile": "modern"}

        result = action.run(task_vars=WIN2019)

        args = sent_args(action)
        assert base64.b64decode(args["_pkcs12_content"]) == bundle["modern"]
        assert "_pkcs12_legacy_content" not in args
        assert args["_plan"]["min_build"] == 17763
        assert (result["profile"], result["reencoded"]) == ("modern", False)

    @pytest.mark.parametrize("host_says", ["modern", "legacy"])
    def test_unknown_build_sends_both_and_reports_the_hosts_choice(
        self, p12_file, bundle, tmp_path, host_says
    ):
        action = make_action(dict(BASE, pkcs12_path="robot-aes.p12"), p12_file)
        action._execute_module.return_value = {"changed": True, "profile": host_says}

        result = action.run(task_vars={})

        args = sent_args(action)
        assert base64.b64decode(args["_pkcs12_content"]) == bundle["modern"]
        fallback = base64.b64decode(args["_pkcs12_legacy_content"])
        assert "pbeWithSHA1And3-KeyTripleDES-CBC" in openssl_info(fallback, tmp_path)
        assert (args["_plan"]["profile"], args["_plan"]["min_build"]) == (
            "modern",
            17763,
        )
        assert result["profile"] == host_says
        assert result["reencoded"] is (host_says == "legacy")
        assert_no_secret(result, bundle)
        assert base64.b64encode(fallback).decode()[:60] not in json.dumps(result)

    @pytest.mark.parametrize("task_vars", [{}, WIN2016, WIN2019])
    def test_legacy_file_goes_as_it_is_everywhere(self, p12_file, bundle, task_vars):
        action = make_action(dict(BASE), p12_file)
        action._execute_module.return_value = {"changed": False, "profile": "legacy"}

        result = action.run(task_vars=task_vars)

        args = sent_args(action)
        assert base64.b64decode(args["_pkcs12_content"]) == bundle["legacy"]
        assert "_pkcs12_legacy_content" not in args
        assert (result["profile"], result["reencoded"]) == ("legacy", False)


class TestOptionChecks:
    def test_current_user_with_become_runas_goes_ahead(self, p12_file):
        action = make_action(
            dict(BASE, store_location="CurrentUser"), p12_file, become="runas"
        )
        action._execute_module.return_value = {"changed": True}

        action.run(task_vars={})

        assert sent_args(action)["store_location"] == "CurrentUser"

    @pytest.mark.parametrize(
        "args",
        [
            {
                "pkcs12_path": "a.p12",
                "pkcs12_content": "AAAA",
                "purpose": "client_auth",
            },
            {"pkcs12_path": "a.p12"},
            {"state": "absent"},
            dict(BASE, store_location="Machine"),
            dict(BASE, bogus=1),
        ],
    )
    def test_bad_options_are_refused(self, p12_file, args):
        action = make_action(args, p12_file)

        with pytest.raises(AnsibleActionFail):
            action.run(task_vars={})
        action._execute_module.assert_not_called()


class TestModuleAnswers:
    def run_with(self, p12_file, answer):
        action = make_action(dict(BASE), p12_file)
        action._execute_module.return_value = answer
        return action.run(task_vars={})

    def test_changed_answer(self, p12_file, bundle):
        answer = {
            "changed": True,
            "thumbprint": bundle["thumbprint"],
            "store": "LocalMachine\\My",
            "has_private_key": True,
            "machine_key": True,
            "key_provider": "Microsoft Enhanced RSA and AES Cryptographic Provider",
            "exportable": False,
            "chain": [
                {"thumbprint": "A" * 40, "store": "LocalMachine\\CA", "changed": True}
            ],
            "superseded": [],
            "identity": "EXAMPLE\\ansible",
            "diff": {"before": {"state": "absent"}, "after": {"state": "present"}},
        }

        result = self.run_with(p12_file, answer)

        assert result["changed"] is True
        assert result["store"] == "LocalMachine\\My"
        assert result["subject"] == bundle["leaf"].subject.rfc4514_string()
        assert result["not_after"].endswith("Z")
        assert result["chain"][0]["store"] == "LocalMachine\\CA"
        assert result["diff"]["before"] == {"state": "absent"}
        assert result["profile"] == "legacy"

    def test_unchanged_answer(self, p12_file, bundle):
        result = self.run_with(
            p12_file, {"changed": False, "thumbprint": bundle["thumbprint"]}
        )

        assert result["changed"] is False
        assert "failed" not in result

    def test_coded_error_answer_becomes_the_fix(self, p12_file, bundle):
        answer = {
            "failed": True,
            "msg": "no credentials",
            "error": {"code": "no_user_credentials"},
            "identity": "EXAMPLE\\robot",
        }

        result = self.run_with(p12_file, answer)

        assert result["failed"] is True
        assert result["error_code"] == "no_user_credentials"
        assert "become: true" in result["msg"]
        assert_no_secret(result, bundle)

    def test_uncoded_error_answer_keeps_its_message(self, p12_file):
        result = self.run_with(
            p12_file, {"failed": True, "msg": "Exception calling Open"}
        )

        assert result == {
            "failed": True,
            "changed": False,
            "msg": "Exception calling Open",
            "invocation": result["invocation"],
        }

    def test_module_output_not_in_allow_list_is_dropped(self, p12_file, bundle):
        answer = {
            "changed": False,
            "_pkcs12_content": base64.b64encode(bundle["legacy"]).decode(),
            "module_stdout": "x",
        }

        result = self.run_with(p12_file, answer)

        assert "_pkcs12_content" not in result
        assert "module_stdout" not in result
        assert_no_secret(result, bundle)

    def test_module_crash_keeps_its_error_record(self, p12_file):
        answer = {
            "failed": True,
            "msg": "MODULE FAILURE",
            "module_stderr": "At line:1 char:1",
            "module_stdout": "",
            "rc": 1,
        }

        result = self.run_with(p12_file, answer)

        assert result["failed"] is True
        assert result["module_stderr"] == "At line:1 char:1"
        assert result["rc"] == 1
        assert "module_stdout" not in result


class TestInARealPlaybook:
    """The action plugin inside ansible-playbook: failures found on the controller never reach a host."""

    def write_playbook(self, tmp_path: Path, task_args: dict[str, t.Any]) -> Path:
        play = [
            {
                "name": "Import on a host that cannot be reached",
                "hosts": "all",
                "gather_facts": False,
                "tasks": [{"name": "Import the robot certificate", MODULE: task_args}],
            }
        ]
        path = tmp_path / "play.yml"
        path.write_text(json.dumps(play), encoding="utf-8")
        return path

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            ({"purpose": "code_signing"}, "does not allow code_signing"),
            (
                {"purpose": "client_auth", "pkcs12_passphrase": "not-it"},
                "wrong pkcs12 passphrase",
            ),
        ],
    )
    def test_controller_failure_without_contacting_the_host(
        self, playbook, p12_file, bundle, args, message
    ):
        task = {
            "pkcs12_path": str(p12_file / "files" / "robot.p12"),
            "pkcs12_passphrase": fx.PASSPHRASE,
        }
        task.update(args)
        task["pkcs12_path"] = str(p12_file / "files" / Path(task["pkcs12_path"]).name)
        inventory = p12_file / "hosts.ini"
        # A WinRM host at a reserved address: any attempt to contact it would fail as unreachable.
        inventory.write_text(
            "robot ansible_host=192.0.2.1 ansible_connection=winrm ansible_winrm_connection_timeout=1\n"
        )

        run = playbook(
            self.write_playbook(p12_file, task), inventory=inventory, verbosity=3
        )

        result = run.task("Import the robot certificate")
        assert run.rc == 2
        assert [r["status"] for r in run.results] == ["failed"]
        assert message in result["msg"]
        assert "unreachable" not in result
        assert result["invocation"]["module_args"]["pkcs12_passphrase"] == MASK
        assert fx.PASSPHRASE not in run.stdout + run.stderr
        assert (
            base64.b64encode(bundle["legacy"]).decode()[:60]
            not in run.stdout + run.stderr
        )

    def test_both_encodings_leave_no_trace_in_a_verbose_run(
        self, playbook, p12_file, bundle
    ):
        """With the build unknown the module arguments carry two PKCS#12s; -vvv shows neither."""
        task = {
            "pkcs12_path": str(p12_file / "files" / "robot-aes.p12"),
            "pkcs12_passphrase": fx.PASSPHRASE,
            "purpose": "client_auth",
        }
        inventory = p12_file / "hosts.ini"
        inventory.write_text(
            "robot ansible_host=192.0.2.1 ansible_connection=winrm ansible_winrm_connection_timeout=1 "
            "ansible_winrm_operation_timeout_sec=1 ansible_winrm_read_timeout_sec=2\n"
        )

        run = playbook(
            self.write_playbook(p12_file, task), inventory=inventory, verbosity=3
        )

        recorded = json.dumps(run.results)
        assert [r["status"] for r in run.results] == ["unreachable"]
        for text in (run.stdout, run.stderr, recorded):
            assert fx.PASSPHRASE not in text
            # No PKCS#12, original or re-encoded, in any form: DER in base64 starts with "MII".
            assert not re.search(r"MII[A-Za-z0-9+/=]{200,}", text)
