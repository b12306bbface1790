"""cert_generate in real ansible-playbook runs, checked with openssl and pkilint."""

from __future__ import annotations

import datetime
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.conftest import run_playbook
from tests.helpers import sh, snapshot
from tests.unit.plugins.module_utils.pki_fixtures import age_certificate

PLAYBOOKS = Path(__file__).parent / "playbooks" / "certs"
VENV_BIN = Path(sys.executable).parent
LEAVES = ("robot01/client", "robot02/client", "signing/signing")


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, t.Any]:
    work = tmp_path_factory.mktemp("generate")
    out = work / "pki"
    run = run_playbook(
        PLAYBOOKS / "generate.yml",
        tmp_path=work,
        extra_vars={"out_dir": str(out)},
        diff=True,
    )
    assert run.rc == 0, run.stdout + run.stderr
    return out, run


def test_first_run_issues_everything(issued: tuple[Path, t.Any]) -> None:
    out, run = issued

    assert run.changed_tasks() == [
        "Create the robot CA",
        "Issue the RSA client certificate",
        "Issue the ECDSA client certificate",
        "Issue the code-signing certificate",
    ]
    assert "ca-secret-passphrase" not in run.stdout + run.stderr
    assert "PRIVATE KEY" not in run.stdout  # the --diff output carries metadata only
    result = run.task("Issue the RSA client certificate")
    assert (
        len(result["thumbprint"]) == 40
        and result["thumbprint"] == result["thumbprint"].upper()
    )
    assert result["issuer"] == "CN=Robot CA,O=Example Robots,C=DE"


def test_openssl_verifies_client_certificates_for_sslclient(
    issued: tuple[Path, t.Any],
) -> None:
    out, _run = issued

    for leaf in ("robot01/client", "robot02/client"):
        result = sh(
            "openssl",
            "verify",
            "-purpose",
            "sslclient",
            "-CAfile",
            str(out / "ca/ca.pem"),
            str(out / f"{leaf}.pem"),
        )
        assert result.returncode == 0 and result.stdout.strip().endswith(": OK"), (
            leaf + result.stdout + result.stderr
        )


def pkilint(tool: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return sh(str(VENV_BIN / tool), "lint", "-s", "WARNING", *map(str, files))


@pytest.mark.parametrize("leaf", LEAVES)
def test_pkilint_reports_nothing_for_leaf_and_chain(
    issued: tuple[Path, t.Any], leaf: str
) -> None:
    out, _run = issued

    single = pkilint("lint_pkix_cert", out / f"{leaf}.pem")
    chain = pkilint(
        "lint_pkix_signer_signee_cert_chain", out / "ca/ca.pem", out / f"{leaf}.pem"
    )

    for result in (single, chain):
        assert result.returncode == 0 and result.stdout.strip() == "", (
            result.stdout + result.stderr
        )


def test_pkilint_reports_nothing_for_ca(issued: tuple[Path, t.Any]) -> None:
    out, _run = issued

    result = pkilint("lint_pkix_cert", out / "ca/ca.pem")

    assert result.returncode == 0 and result.stdout.strip() == "", (
        result.stdout + result.stderr
    )


def test_keys_are_private(issued: tuple[Path, t.Any]) -> None:
    out, _run = issued

    for key in (
        "ca/ca.key",
        "robot01/client.key",
        "robot02/client.key",
        "signing/signing.key",
    ):
        assert (out / key).stat().st_mode & 0o777 == 0o600, key
        assert (out / key).parent.stat().st_mode & 0o777 == 0o700, key
    assert b"ENCRYPTED PRIVATE KEY" in (out / "ca/ca.key").read_bytes()
    check = sh(
        "openssl",
        "pkey",
        "-in",
        str(out / "ca/ca.key"),
        "-passin",
        "pass:ca-secret-passphrase",
        "-noout",
    )
    assert check.returncode == 0, check.stderr


def test_second_run_changes_nothing(
    issued: tuple[Path, t.Any], playbook: t.Callable[..., t.Any]
) -> None:
    out, _first = issued
    before = snapshot(out)

    again = playbook(PLAYBOOKS / "generate.yml", extra_vars={"out_dir": str(out)})

    assert again.rc == 0, again.stdout + again.stderr
    assert again.changed_tasks() == []
    assert snapshot(out) == before


def test_check_mode_writes_nothing(
    tmp_path: Path, playbook: t.Callable[..., t.Any]
) -> None:
    out = tmp_path / "pki"

    run = playbook(
        PLAYBOOKS / "generate.yml", extra_vars={"out_dir": str(out)}, check=True
    )

    # Leaves fail in check mode because the CA that would sign them was not written.
    assert run.task("Create the robot CA")["changed"] is True
    assert not out.exists()


def test_renewal_inside_renew_before_days(
    tmp_path: Path, playbook: t.Callable[..., t.Any]
) -> None:
    out = tmp_path / "pki"
    variables = {"out_dir": str(out), "leaf_valid_days": 40}
    first = playbook(PLAYBOOKS / "generate.yml", extra_vars=variables)
    assert first.rc == 0, first.stdout
    key_before = (out / "robot01/client.key").read_bytes()
    ca_key = serialization.load_pem_private_key(
        (out / "ca/ca.key").read_bytes(), b"ca-secret-passphrase"
    )
    aged = age_certificate(
        out / "robot01/client.pem", out / "ca/ca.pem", ca_key, days=20
    )

    second = playbook(PLAYBOOKS / "generate.yml", extra_vars=variables)
    third = playbook(PLAYBOOKS / "generate.yml", extra_vars=variables)

    assert second.changed_tasks() == ["Issue the RSA client certificate"]
    renewed = second.task("Issue the RSA client certificate")
    assert renewed["reasons"] == ["certificate expires within 30 days"]
    assert renewed["serial_number"] != aged.serial_number
    assert (out / "robot01/client.key").read_bytes() == key_before
    assert third.changed_tasks() == []
    dates = sh(
        "openssl", "x509", "-in", str(out / "robot01/client.pem"), "-noout", "-enddate"
    )
    end = datetime.datetime.strptime(
        dates.stdout.strip().removeprefix("notAfter="), "%b %d %H:%M:%S %Y %Z"
    ).replace(tzinfo=datetime.UTC)
    assert end - datetime.datetime.now(datetime.UTC) > datetime.timedelta(days=39)


def test_renewal_loop_options_are_refused(
    tmp_path: Path, playbook: t.Callable[..., t.Any]
) -> None:
    out = tmp_path / "pki"

    run = playbook(
        PLAYBOOKS / "generate.yml",
        extra_vars={
            "out_dir": str(out),
            "leaf_valid_days": 10,
            "leaf_renew_before_days": 30,
        },
    )

    result = run.task("Issue the RSA client certificate")
    statuses = [
        r["status"]
        for r in run.results
        if r["task"] == "Issue the RSA client certificate"
    ]
    assert run.rc != 0 and statuses == ["failed"], (statuses, run.stdout)
    assert result["msg"] == (
        "valid_days 10 must be greater than renew_before_days 30;"
        " raise valid_days or lower renew_before_days"
    )
    assert not (out / "robot01").exists()


def test_bad_input_fails_in_one_line(
    issued: tuple[Path, t.Any], playbook: t.Callable[..., t.Any]
) -> None:
    out, _run = issued
    before = snapshot(out)

    run = playbook(PLAYBOOKS / "generate_bad.yml", extra_vars={"out_dir": str(out)})

    expected = {
        "Use a wrong issuer passphrase": "wrong passphrase",
        "Use a leaf as issuer": "is not a CA",
        "Use an issuer key of another certificate": "does not match issuer certificate",
        "Give a three-letter country": "two-letter ISO 3166 code",
        "Ask for an unknown extended key usage": "unknown extended key usage 'robot_login'",
        "Ask for a 1024-bit RSA key": "is not supported for RSA; use 2048, 3072 or 4096",
        "Point the issuer at a missing file": "does not exist",
        "Write into a folder below a file": "is not a directory",
    }
    # rc 0: every task failed as its failed_when expects.
    assert run.rc == 0, run.stdout + run.stderr
    for task, message in expected.items():
        result = run.task(task)
        assert [r["status"] for r in run.results if r["task"] == task] == ["ok"], task
        assert message in result["msg"] and "\n" not in result["msg"], (
            task,
            result["msg"],
        )
        assert "Traceback" not in str(result.get("exception", "")), task
    assert "Traceback" not in run.stdout + run.stderr
    assert "ca-secret-passphrase" not in run.stdout + run.stderr
    assert snapshot(out) == before


def test_fleet_run_never_connects_to_robots(
    issued: tuple[Path, t.Any], tmp_path: Path, playbook: t.Callable[..., t.Any]
) -> None:
    """Robots behind WinRM at unroutable addresses: both modules still run, on the controller only."""
    shared, _run = issued
    out = tmp_path / "pki"
    (out / "ca").mkdir(parents=True)
    for name in ("ca.pem", "ca.key"):
        (out / "ca" / name).write_bytes((shared / "ca" / name).read_bytes())
    inventory = tmp_path / "inventory.yml"
    hosts = "\n".join(
        f"        robot{i:02d}:\n          ansible_host: 192.0.2.{i}"
        for i in range(10, 13)
    )
    inventory.write_text(
        "all:\n  children:\n    robots:\n      vars:\n        ansible_connection: winrm\n"
        "        ansible_user: robot-admin\n        ansible_password: unused\n      hosts:\n"
        + hosts
        + "\n"
    )

    run = playbook(
        PLAYBOOKS / "fleet.yml", inventory=inventory, extra_vars={"out_dir": str(out)}
    )

    assert run.rc == 0, run.stdout + run.stderr
    assert "UNREACHABLE" not in run.stdout
    assert sorted(
        r["host"] for r in run.results if r["task"] == "Export the robot's PKCS#12"
    ) == ["robot10", "robot11", "robot12"]
    for host in ("robot10", "robot11", "robot12"):
        assert (out / host / "client.p12").stat().st_mode & 0o777 == 0o600
