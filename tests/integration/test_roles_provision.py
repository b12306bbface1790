"""provision.yml end to end: a fleet of hostless robots against the ServiceNow test double.

The proof is independent of the roles: openssl verifies the chains and reads the PKCS#12
encryption, the double's tables hold the mappings, its request log counts the writes, and each
robot's PKCS#12 logs in on the double's mutual-TLS port as the robot's own user.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from roles_fleet import (
    PASSPHRASE,
    USER_CERT_PATH,
    WRITES,
    Fleet,
    openssl,
    pkcs12_info,
    recap_changed,
)

from tests.conftest import run_playbook
from tests.servicenow_double.fixture import SnowInstance

# Playbook runs against the ServiceNow double: seconds each, a minute on a busy machine.
pytestmark = pytest.mark.slow

# Build 20348 gets the modern profile, 14393 and an unknown build the legacy one.
BUILDS = [20348, 14393, None]
MODERN = "AES-256-CBC"
LEGACY = "pbeWithSHA1And3-KeyTripleDES-CBC"


@pytest.fixture(scope="module")
def provisioned(
    snow_instance: SnowInstance,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Fleet, t.Any, t.Any, dict[str, t.Any]]:
    """The fleet provisioned, re-run, then run in check mode; the tests below check each run."""
    tmp_path = tmp_path_factory.mktemp("provision")
    fleet = Fleet.numbered(tmp_path, snow_instance, 3, "prov", BUILDS)

    def play(path: Path, **kwargs: t.Any) -> t.Any:
        return run_playbook(path, tmp_path=tmp_path, **kwargs)

    first = fleet.run(play, "provision.yml")
    snow_instance.clear_requests()
    second = fleet.run(play, "provision.yml")
    second_log = snow_instance.requests()
    snow_instance.clear_requests()
    third = fleet.run(play, "provision.yml", check=True)
    checked = {"run": third, "log": snow_instance.requests(), "second_log": second_log}
    return fleet, first, second, checked


def test_provision_issues_every_identity(
    provisioned: tuple[Fleet, t.Any, t.Any, dict[str, t.Any]],
) -> None:
    fleet, first, _second, _checked = provisioned
    assert first.rc == 0, first.stdout[-3000:]
    ca = fleet.certs / "ca" / "robot-ca.crt"

    for index, host in enumerate(fleet.robots):
        folder = fleet.dir(host)
        client = openssl(
            "verify",
            "-purpose",
            "sslclient",
            "-CAfile",
            str(ca),
            str(folder / "client.crt"),
        )
        assert client.returncode == 0, client.stdout + client.stderr
        # This openssl has no code-signing purpose: verify the chain, then read the EKU.
        signing = openssl("verify", "-CAfile", str(ca), str(folder / "codesign.crt"))
        assert signing.returncode == 0, signing.stdout + signing.stderr
        eku = openssl(
            "x509",
            "-noout",
            "-ext",
            "extendedKeyUsage",
            "-in",
            str(folder / "codesign.crt"),
        )
        assert "Code Signing" in eku.stdout, eku.stdout + eku.stderr
        assert "TLS Web Client Authentication" not in eku.stdout
        for name in ("client.key", "codesign.key", "client.p12", "codesign.p12"):
            assert (folder / name).stat().st_mode & 0o777 == 0o600, name
        build = BUILDS[index]
        expected = MODERN if build and build >= 17763 else LEGACY
        for name in ("client.p12", "codesign.p12"):
            assert expected in pkcs12_info(folder / name), (host, name)


def test_provision_maps_each_robot_and_it_logs_in(
    provisioned: tuple[Fleet, t.Any, t.Any, dict[str, t.Any]],
    snow_instance: SnowInstance,
) -> None:
    fleet, first, _second, _checked = provisioned
    assert first.rc == 0, first.stdout[-3000:]

    for host, variables in fleet.robots.items():
        user = variables["robot_snow_user"]
        assert [m["active"] for m in fleet.mappings(user)] == ["true"], host
        login = snow_instance.login_with_pkcs12(
            fleet.dir(host) / "client.p12", PASSPHRASE
        )
        assert login == user


def test_provision_maps_the_fleet_in_one_call(
    provisioned: tuple[Fleet, t.Any, t.Any, dict[str, t.Any]],
) -> None:
    _fleet, first, _second, _checked = provisioned
    batch = [
        r
        for r in first.results
        if r["action"] == "snowrpa.robot_certs.snow_user_cert"
        and "Map the client certificates of all robots" in r["task"]
    ]
    # One batched call while mapping and one while retiring superseded mappings, each run once.
    assert len(batch) == 2
    assert all(r["status"] == "ok" for r in batch)
    fallback = [
        r
        for r in first.results
        if r["action"] == "snowrpa.robot_certs.snow_user_cert"
        and r["status"] != "skipped"
    ]
    assert len(fallback) == 2


def test_provision_skips_the_windows_stage_with_one_message(
    provisioned: tuple[Fleet, t.Any, t.Any, dict[str, t.Any]],
) -> None:
    _fleet, first, _second, _checked = provisioned
    assert (
        "Windows stage skipped for robot01, robot02, robot03: "
        "robot_windows_host is false (no Windows host to install on)"
    ) in first.stdout
    assert not [
        r for r in first.results if r["action"] == "snowrpa.robot_certs.win_cert_import"
    ]


def test_check_mode_on_a_new_fleet_writes_nothing(
    playbook: t.Callable[..., t.Any], tmp_path: Path
) -> None:
    fleet = Fleet.numbered(tmp_path, None, 2, "check")
    run = fleet.run(playbook, "provision.yml", check=True)

    assert run.rc == 0, run.stdout[-3000:]
    assert not fleet.certs.exists()
    assert "robot02: check mode - no certificates in " in run.stdout


def test_rerun_and_check_mode_change_nothing_and_write_nothing(
    provisioned: tuple[Fleet, t.Any, t.Any, dict[str, t.Any]],
) -> None:
    fleet, _first, second, checked = provisioned
    for run, log in ((second, checked["second_log"]), (checked["run"], checked["log"])):
        assert run.rc == 0, run.stdout[-3000:]
        assert set(recap_changed(run.stdout).values()) == {0}
        assert run.changed_tasks() == []
        assert [r for r in log if r["method"] in WRITES] == []
        # The run still looked the mappings up: it did talk to the instance.
        assert any(r["path"].startswith(USER_CERT_PATH) for r in log)
    for host in fleet.robots:
        assert (fleet.dir(host) / "client.p12").exists()
