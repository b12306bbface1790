"""cert_generate through its action plugin: options, idempotency, renewal, check mode and every bad input."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path
from unittest import mock

import pytest
from cryptography import x509

from ansible_collections.snowrpa.robot_certs.plugins.action.cert_generate import (
    ActionModule,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils import _pki
from tests.helpers import snapshot
from tests.unit.plugins.module_utils.pki_fixtures import age_certificate


def run_action(
    args: dict[str, t.Any], *, check: bool = False, diff: bool = False
) -> dict[str, t.Any]:
    task = mock.MagicMock()
    task.args = args
    task.check_mode = check
    task.diff = diff
    task.async_val = 0
    task.action = "snowrpa.robot_certs.cert_generate"
    connection = mock.MagicMock()
    connection._shell.tmpdir = "/nonexistent"
    action = ActionModule(
        task,
        connection,
        mock.MagicMock(),
        mock.MagicMock(),
        mock.MagicMock(),
        mock.MagicMock(),
    )
    return action.run(task_vars={})


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ca")
    result = run_action(
        {
            "path": str(folder / "ca.pem"),
            "privatekey_path": str(folder / "ca.key"),
            "privatekey_passphrase": "ca-secret",
            "purpose": "ca",
            "key_type": "ecdsa",
            "valid_days": 3650,
            "subject": {
                "common_name": "Robot CA",
                "organization_name": "Example",
                "country_name": "DE",
            },
        }
    )
    assert result["changed"] and not result.get("failed"), result
    return folder


def leaf_args(ca_dir: Path, out: Path, **extra: t.Any) -> dict[str, t.Any]:
    args = {
        "path": str(out / "client.pem"),
        "privatekey_path": str(out / "client.key"),
        "purpose": "client_auth",
        "subject": {
            "common_name": "robot01",
            "organization_name": "Example",
            "country_name": "DE",
        },
        "subject_alt_names": ["upn:robot01@example.com"],
        "issuer_cert_path": str(ca_dir / "ca.pem"),
        "issuer_privatekey_path": str(ca_dir / "ca.key"),
        "issuer_privatekey_passphrase": "ca-secret",
    }
    args.update(extra)
    return args


def test_issue_then_keep(tmp_path: Path, ca_dir: Path) -> None:
    first = run_action(leaf_args(ca_dir, tmp_path / "out"))
    before = snapshot(tmp_path / "out")

    second = run_action(leaf_args(ca_dir, tmp_path / "out"))

    assert first["changed"] is True and "no certificate yet" in first["reasons"]
    assert second["changed"] is False and second["reasons"] == []
    assert snapshot(tmp_path / "out") == before
    assert second["thumbprint"] == first["thumbprint"]
    assert before["client.key"][1] == 0o600
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o700
    verify = subprocess.run(
        [
            "openssl",
            "verify",
            "-purpose",
            "sslclient",
            "-CAfile",
            str(ca_dir / "ca.pem"),
            str(tmp_path / "out" / "client.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr


def test_returns_describe_the_file(tmp_path: Path, ca_dir: Path) -> None:
    result = run_action(leaf_args(ca_dir, tmp_path))
    cert = x509.load_pem_x509_certificate((tmp_path / "client.pem").read_bytes())

    assert result["thumbprint"] == _pki.thumbprint(cert)
    assert result["serial_number"] == cert.serial_number
    assert result["subject"] == "CN=robot01,O=Example,C=DE"
    assert result["issuer"] == "CN=Robot CA,O=Example,C=DE"
    assert "ca-secret" not in repr(result)


def test_check_mode_writes_nothing(tmp_path: Path, ca_dir: Path) -> None:
    result = run_action(leaf_args(ca_dir, tmp_path / "out"), check=True, diff=True)

    assert result["changed"] is True
    assert not (tmp_path / "out").exists()
    assert result["thumbprint"] is None
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["subject"] == "CN=robot01,O=Example,C=DE"


def test_check_mode_makes_no_rsa_key_for_a_new_one_yet_still_checks_the_options(
    tmp_path: Path, ca_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    def refuse(*_args: t.Any, **_kwargs: t.Any) -> t.NoReturn:
        raise AssertionError("check mode generated an RSA key")

    monkeypatch.setattr(rsa, "generate_private_key", refuse)
    args = leaf_args(ca_dir, tmp_path / "out", key_type="rsa", key_size=4096)

    result = run_action(args, check=True)

    assert result["changed"] is True and "no private key yet" in result["reasons"]
    assert result["subject"] == "CN=robot01,O=Example,C=DE"
    assert not (tmp_path / "out").exists()
    refused = run_action(dict(args, key_size=1000), check=True)
    assert refused["failed"] and "key_size 1000 is not supported" in refused["msg"]


def test_check_mode_on_unchanged_reports_no_change(
    tmp_path: Path, ca_dir: Path
) -> None:
    run_action(leaf_args(ca_dir, tmp_path))
    before = snapshot(tmp_path)

    result = run_action(leaf_args(ca_dir, tmp_path), check=True)

    assert result["changed"] is False
    assert snapshot(tmp_path) == before


def _ca_key(ca_dir: Path) -> t.Any:
    return _pki.load_private_key(
        (ca_dir / "ca.key").read_bytes(), "ca-secret", source="ca.key"
    )


def test_renews_inside_renew_before_days_and_keeps_key(
    tmp_path: Path, ca_dir: Path
) -> None:
    run_action(leaf_args(ca_dir, tmp_path, valid_days=40))
    key_before = (tmp_path / "client.key").read_bytes()
    aged = age_certificate(
        tmp_path / "client.pem", ca_dir / "ca.pem", _ca_key(ca_dir), days=20
    )

    renewed = run_action(leaf_args(ca_dir, tmp_path, valid_days=40))
    again = run_action(leaf_args(ca_dir, tmp_path, valid_days=40))

    assert renewed["changed"] is True
    assert renewed["reasons"] == ["certificate expires within 30 days"]
    assert renewed["serial_number"] != aged.serial_number
    assert (tmp_path / "client.key").read_bytes() == key_before
    assert again["changed"] is False
    assert again["serial_number"] == renewed["serial_number"]


@pytest.mark.parametrize(("valid_days", "renew_before_days"), [(10, 30), (30, 30)])
def test_valid_days_not_above_renew_before_days_is_refused(
    tmp_path: Path, ca_dir: Path, valid_days: int, renew_before_days: int
) -> None:
    result = run_action(
        leaf_args(
            ca_dir,
            tmp_path / "out",
            valid_days=valid_days,
            renew_before_days=renew_before_days,
        )
    )

    assert result["failed"] is True
    assert result["msg"] == (
        f"valid_days {valid_days} must be greater than renew_before_days {renew_before_days};"
        " raise valid_days or lower renew_before_days"
    )
    assert not (tmp_path / "out").exists()


def test_leaf_cut_short_by_its_issuer_is_kept_with_a_warning(
    tmp_path: Path, ca_dir: Path
) -> None:
    short_ca = tmp_path / "short-ca"
    made = run_action(
        {
            "path": str(short_ca / "ca.pem"),
            "privatekey_path": str(short_ca / "ca.key"),
            "purpose": "ca",
            "key_type": "ecdsa",
            "valid_days": 20,
            "renew_before_days": 5,
            "subject": {"common_name": "Short CA"},
            "issuer_cert_path": str(ca_dir / "ca.pem"),
            "issuer_privatekey_path": str(ca_dir / "ca.key"),
            "issuer_privatekey_passphrase": "ca-secret",
        }
    )
    args = leaf_args(
        ca_dir,
        tmp_path / "out",
        issuer_cert_path=str(short_ca / "ca.pem"),
        issuer_privatekey_path=str(short_ca / "ca.key"),
        issuer_privatekey_passphrase=None,
    )

    first = run_action(args)
    before = snapshot(tmp_path / "out")
    second = run_action(args)

    warning = f"issuer CA CN=Short CA expires on {made['not_after']}; renew the CA"
    assert first["changed"] is True and first["not_after"] == made["not_after"]
    assert first["warnings"] == [warning]
    assert second["changed"] is False and second["reasons"] == []
    assert second["serial_number"] == first["serial_number"]
    assert second["warnings"] == [warning]
    assert snapshot(tmp_path / "out") == before


def test_changed_subject_renews_and_diff_shows_both(
    tmp_path: Path, ca_dir: Path
) -> None:
    run_action(leaf_args(ca_dir, tmp_path))
    args = leaf_args(ca_dir, tmp_path)
    args["subject"] = {"common_name": "robot01", "organization_name": "Other"}

    result = run_action(args, diff=True)

    assert result["changed"] and result["reasons"] == ["subject differs"]
    assert result["diff"]["before"]["subject"] == "CN=robot01,O=Example,C=DE"
    assert result["diff"]["after"]["subject"] == "CN=robot01,O=Other"
    assert "PRIVATE" not in repr(result["diff"])


def test_key_type_change_makes_new_key(tmp_path: Path, ca_dir: Path) -> None:
    run_action(leaf_args(ca_dir, tmp_path))
    key_before = (tmp_path / "client.key").read_bytes()

    result = run_action(leaf_args(ca_dir, tmp_path, key_type="ecdsa"))

    assert result["changed"] and "key options changed" in result["reasons"]
    assert (tmp_path / "client.key").read_bytes() != key_before


def test_force_makes_new_key_and_certificate(tmp_path: Path, ca_dir: Path) -> None:
    first = run_action(leaf_args(ca_dir, tmp_path))
    key_before = (tmp_path / "client.key").read_bytes()

    forced = run_action(leaf_args(ca_dir, tmp_path, force=True))

    assert forced["changed"] and forced["thumbprint"] != first["thumbprint"]
    assert (tmp_path / "client.key").read_bytes() != key_before


def test_adding_key_passphrase_rewrites_key_only(tmp_path: Path, ca_dir: Path) -> None:
    first = run_action(leaf_args(ca_dir, tmp_path))

    result = run_action(
        leaf_args(ca_dir, tmp_path, privatekey_passphrase="robot-secret")
    )

    assert result["changed"] and result["reasons"] == ["private key protection changed"]
    assert result["thumbprint"] == first["thumbprint"]
    assert b"ENCRYPTED PRIVATE KEY" in (tmp_path / "client.key").read_bytes()
    assert (
        run_action(leaf_args(ca_dir, tmp_path, privatekey_passphrase="robot-secret"))[
            "changed"
        ]
        is False
    )


def test_loose_key_mode_is_repaired(tmp_path: Path, ca_dir: Path) -> None:
    run_action(leaf_args(ca_dir, tmp_path))
    os.chmod(tmp_path / "client.key", 0o644)

    result = run_action(leaf_args(ca_dir, tmp_path))

    assert result["changed"] is True
    assert (tmp_path / "client.key").stat().st_mode & 0o777 == 0o600


def test_self_signed_leaf_warns(tmp_path: Path) -> None:
    result = run_action(
        {
            "path": str(tmp_path / "s.pem"),
            "privatekey_path": str(tmp_path / "s.key"),
            "subject": {"common_name": "robot09"},
        }
    )

    assert result["changed"] is True
    assert any(
        "ServiceNow blocks self-signed certificates" in w for w in result["warnings"]
    )


def test_issuer_change_renews(tmp_path: Path, ca_dir: Path) -> None:
    run_action(leaf_args(ca_dir, tmp_path))
    args = leaf_args(ca_dir, tmp_path)
    for name in (
        "issuer_cert_path",
        "issuer_privatekey_path",
        "issuer_privatekey_passphrase",
    ):
        del args[name]

    result = run_action(args)

    assert (
        result["changed"]
        and "certificate is not self-signed but no issuer is given" in result["reasons"]
    )


# Bad input: one line, no traceback, nothing created or changed --------------------------------


@pytest.fixture(scope="module")
def bad_issuers(tmp_path_factory: pytest.TempPathFactory, ca_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("bad")
    leaf = run_action(
        {
            "path": str(folder / "leaf.pem"),
            "privatekey_path": str(folder / "leaf.key"),
            "subject": {"common_name": "not a CA"},
        }
    )
    assert leaf["changed"]
    other = run_action(
        {
            "path": str(folder / "other.pem"),
            "privatekey_path": str(folder / "other.key"),
            "purpose": "ca",
            "subject": {"common_name": "Other CA"},
        }
    )
    assert other["changed"]
    key = _pki.generate_private_key("ecdsa", 2048, "secp256r1")
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
    expired = _pki.build_certificate(
        purpose="ca",
        subject=_pki.build_subject({"common_name": "Expired CA"}),
        san=[],
        extra_ekus=[],
        public_key=key.public_key(),
        valid_days=10,
        issuer_cert=None,
        issuer_key=key,
        now=past,
    )
    (folder / "expired.pem").write_bytes(_pki.cert_pem(expired))
    (folder / "expired.key").write_bytes(_pki.serialize_private_key(key, None))
    good = (ca_dir / "ca.pem").read_bytes()
    (folder / "truncated.pem").write_bytes(
        good[: len(good) // 2] + b"\n-----END CERTIFICATE-----\n"
    )
    return folder


BAD_INPUTS: list[tuple[str, t.Callable[[Path, Path], dict[str, t.Any]], str]] = [
    (
        "wrong issuer passphrase",
        lambda ca, bad: {"issuer_privatekey_passphrase": "nope"},
        "wrong passphrase",
    ),
    (
        "issuer without CA basic constraints",
        lambda ca, bad: {
            "issuer_cert_path": str(bad / "leaf.pem"),
            "issuer_privatekey_path": str(bad / "leaf.key"),
            "issuer_privatekey_passphrase": None,
        },
        "is not a CA (no basicConstraints CA:TRUE)",
    ),
    (
        "issuer key not matching issuer certificate",
        lambda ca, bad: {
            "issuer_privatekey_path": str(bad / "other.key"),
            "issuer_privatekey_passphrase": None,
        },
        "issuer private key does not match issuer certificate",
    ),
    (
        "expired issuer",
        lambda ca, bad: {
            "issuer_cert_path": str(bad / "expired.pem"),
            "issuer_privatekey_path": str(bad / "expired.key"),
            "issuer_privatekey_passphrase": None,
        },
        "expired on",
    ),
    (
        "country not two letters",
        lambda ca, bad: {"subject": {"common_name": "robot01", "country_name": "DEU"}},
        "must be a two-letter ISO 3166 code",
    ),
    (
        "unknown EKU name",
        lambda ca, bad: {"extended_key_usages": ["clientauthentication"]},
        "unknown extended key usage 'clientauthentication'",
    ),
    (
        "RSA key below 2048",
        lambda ca, bad: {"key_size": 1024},
        "key_size 1024 is not supported for RSA; use 2048, 3072 or 4096",
    ),
    (
        "malformed PEM",
        lambda ca, bad: {"issuer_cert_path": str(bad / "truncated.pem")},
        "is not a valid PEM/DER certificate (truncated or damaged)",
    ),
    (
        "missing input file",
        lambda ca, bad: {"issuer_cert_path": str(bad / "absent.pem")},
        "does not exist; check the path",
    ),
    (
        "output folder not writable",
        lambda ca, bad: {"path": str(bad / "leaf.pem" / "client.pem")},
        "cannot be written",
    ),
    (
        "unknown option",
        lambda ca, bad: {"colour": "blue"},
        "Unsupported parameters for (snowrpa.robot_certs.cert_generate) module: colour",
    ),
    (
        "bad SAN prefix",
        lambda ca, bad: {"subject_alt_names": ["robot01.example.com"]},
        "needs a prefix: email:, upn:, uri: or dns:",
    ),
]


@pytest.mark.parametrize(
    ("case", "change", "message"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_input(
    tmp_path: Path,
    ca_dir: Path,
    bad_issuers: Path,
    case: str,
    change: t.Callable[[Path, Path], dict[str, t.Any]],
    message: str,
) -> None:
    args = leaf_args(ca_dir, tmp_path / "out")
    args.update(change(ca_dir, bad_issuers))
    args = {k: v for k, v in args.items() if v is not None}
    watched = [tmp_path, ca_dir, bad_issuers]
    before = [snapshot(folder) for folder in watched]

    result = run_action(args)

    assert result["failed"] is True, result
    assert message in result["msg"]
    assert "\n" not in result["msg"] and "Traceback" not in result["msg"]
    assert "exception" not in result
    assert "ca-secret" not in repr(result)
    assert [snapshot(folder) for folder in watched] == before
    assert not (tmp_path / "out").exists()


def test_existing_key_with_wrong_passphrase_is_not_replaced(
    tmp_path: Path, ca_dir: Path
) -> None:
    run_action(leaf_args(ca_dir, tmp_path, privatekey_passphrase="first"))
    before = snapshot(tmp_path)

    result = run_action(leaf_args(ca_dir, tmp_path, privatekey_passphrase="second"))

    assert (
        result["failed"]
        and "wrong passphrase" in result["msg"]
        and "force: true" in result["msg"]
    )
    assert snapshot(tmp_path) == before


def test_unchanged_run_does_not_decrypt_issuer_key(
    tmp_path: Path, ca_dir: Path
) -> None:
    run_action(leaf_args(ca_dir, tmp_path))
    before = snapshot(tmp_path)

    kept = run_action(
        leaf_args(
            ca_dir, tmp_path, issuer_privatekey_passphrase="not-the-ca-passphrase"
        )
    )
    renewal = run_action(
        leaf_args(
            ca_dir,
            tmp_path,
            issuer_privatekey_passphrase="not-the-ca-passphrase",
            valid_days=60,
        )
    )

    assert kept["changed"] is False and snapshot(tmp_path) == before
    assert renewal["failed"] is True and "wrong passphrase" in renewal["msg"]
    assert snapshot(tmp_path) == before


def test_plain_module_runs_the_same_backend(tmp_path: Path, ca_dir: Path) -> None:
    """The module file also works without its action plugin (as ansible-test and ansible-doc load it)."""
    args_file = tmp_path / "args.json"
    args = leaf_args(ca_dir, tmp_path / "out")
    args_file.write_text(
        json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": False}})
    )
    repo = Path(__file__).resolve().parents[4]
    module = (
        repo
        / ".collections/ansible_collections/snowrpa/robot_certs/plugins/modules/cert_generate.py"
    )

    proc = subprocess.run(
        [sys.executable, str(module), str(args_file)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(repo / ".collections")},
        check=False,
    )

    result = json.loads(proc.stdout)
    assert result["changed"] is True, proc.stdout + proc.stderr
    assert result["thumbprint"] == _pki.thumbprint(
        x509.load_pem_x509_certificate((tmp_path / "out/client.pem").read_bytes())
    )
    assert "ca-secret" not in proc.stdout
    assert (tmp_path / "out/client.key").stat().st_mode & 0o777 == 0o600


def test_damaged_existing_files_name_one_remedy_each(
    tmp_path: Path, ca_dir: Path
) -> None:
    run_action(leaf_args(ca_dir, tmp_path))
    cert_path, key_path = tmp_path / "client.pem", tmp_path / "client.key"
    good_cert = cert_path.read_bytes()
    cert_path.write_bytes(good_cert[:300] + b"\n-----END CERTIFICATE-----\n")

    damaged = run_action(leaf_args(ca_dir, tmp_path))

    cert_path.write_bytes(good_cert)
    key = _pki.load_private_key(key_path.read_bytes(), None, source="key")
    key_path.write_bytes(_pki.serialize_private_key(key, "robot-secret"))
    before = snapshot(tmp_path)
    locked = run_action(leaf_args(ca_dir, tmp_path))

    assert damaged["failed"] is True
    assert damaged["msg"] == (
        f"existing path {str(cert_path)!r} is not a valid PEM/DER certificate (truncated or damaged);"
        " fix or remove the file, or set force: true to replace it"
    )
    assert locked["failed"] is True
    assert locked["msg"] == (
        f"existing privatekey_path {str(key_path)!r} is encrypted; give its passphrase,"
        " or set force: true to replace key and certificate"
    )
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (
            ["email:foo"],
            "subject_alt_names entry 'email:foo' is not valid; expected an e-mail address",
        ),
        (
            ["upn:"],
            "subject_alt_names entry 'upn:' has an empty value; give a user principal name",
        ),
        (
            ["uri:not a uri"],
            "subject_alt_names entry 'uri:not a uri' is not valid; expected a URI",
        ),
        (
            ["dns:bad host_name!"],
            "subject_alt_names entry 'dns:bad host_name!' is not valid; expected a fully qualified host name",
        ),
    ],
)
def test_bad_names_fail_before_anything_is_written(
    tmp_path: Path, ca_dir: Path, names: list[str], message: str
) -> None:
    result = run_action(leaf_args(ca_dir, tmp_path / "out", subject_alt_names=names))

    assert result["failed"] is True and result["msg"].startswith(message), result
    assert "\n" not in result["msg"]
    assert not (tmp_path / "out").exists()


def test_odd_rsa_key_size_is_refused(tmp_path: Path, ca_dir: Path) -> None:
    result = run_action(leaf_args(ca_dir, tmp_path / "out", key_size=2049))

    assert (
        result["msg"]
        == "key_size 2049 is not supported for RSA; use 2048, 3072 or 4096"
    )
    assert not (tmp_path / "out").exists()
