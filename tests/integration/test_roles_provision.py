"""provision.yml end to end: a fleet of hostless robots against the ServiceNow test double.

The proof is independent of the roles: openssl verifies the chains and reads the PKCS#12
encryption, the double's tables hold the mappings, its request log counts the writes, and each
robot's PKCS#12 logs in on the double's mutual-TLS port as the robot's own user.
"""

from __future__ import annotations

import math
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

# Build 20348 gets the modern profile, 14393 the legacy one, and an unknown build the modern one
# (robot_identity_unknown_build_profile; win_cert_import re-encodes it in memory for an older host).
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
        expected = LEGACY if build is not None and build < 17763 else MODERN
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
    # One batched call while mapping; the retire step's call is skipped, since the map step found
    # no robot with another mapping to retire on a new fleet.
    assert [r["status"] for r in batch] == ["ok", "skipped"]
    assert batch[0]["result"]["other_mappings"] == []
    sent = [
        r
        for r in first.results
        if r["action"] == "snowrpa.robot_certs.snow_user_cert"
        and r["status"] != "skipped"
    ]
    assert len(sent) == 1


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


# The issue's target for an unchanged re-run: ceil(N / 100) + 5 requests to the instance.
TWENTY = 20
PREFLIGHT_ONLY = (
    "/adcv2/supports_tls",
    "/api/now/table/sys_db_object",
    "/api/now/table/sys_dictionary",
    "/api/now/table/sys_choice",
    "/api/now/table/sys_user_has_role",
)


def _role_task(run: t.Any, name: str) -> dict[str, t.Any]:
    """The one recorded result of the role task NAME (recorded with the role's prefix)."""
    found = [r for r in run.results if r["task"].endswith(" : " + name)]
    assert len(found) == 1, [r["task"] for r in found]
    return found[0]


@pytest.fixture(scope="module")
def twenty(
    snow_instance_factory: t.Callable[..., SnowInstance],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, t.Any]:
    """Twenty robots on a fresh instance: first run, unchanged re-run, re-run with the legacy preflight true."""
    snow = snow_instance_factory(plugin_delay=0.2, publish_delay=0.2)
    tmp_path = tmp_path_factory.mktemp("twenty")
    fleet = Fleet.numbered(tmp_path, snow, TWENTY, "twenty")

    def play(path: Path, **kwargs: t.Any) -> t.Any:
        return run_playbook(path, tmp_path=tmp_path, **kwargs)

    runs: dict[str, t.Any] = {"fleet": fleet, "snow": snow}
    for name, extra in (
        ("first", {}),
        ("rerun", {}),
        ("always", {"servicenow_cba_preflight": True}),
    ):
        snow.clear_requests()
        runs[name] = fleet.run(play, "provision.yml", **extra)
        runs[name + "_log"] = [r for r in snow.requests() if r["port"] == "main"]
    return runs


def test_unchanged_rerun_stays_within_the_request_target(
    twenty: dict[str, t.Any],
) -> None:
    rerun, log = twenty["rerun"], twenty["rerun_log"]
    assert rerun.rc == 0, rerun.stdout[-3000:]
    assert rerun.changed_tasks() == []

    assert len(log) <= math.ceil(TWENTY / 100) + 5, [r["path"] for r in log]
    assert {r["method"] for r in log} == {"GET"}
    paths = [r["path"] for r in log]
    # One plugin read stands for the pre-flight and the plugin step; one read for all properties.
    assert paths.count("/api/now/table/v_plugin") == 1
    assert paths.count("/api/now/table/sys_properties") == 1
    assert not set(paths) & set(PREFLIGHT_ONLY)
    # The registered CA is not read a second time, nor downloaded, for the mapping check.
    assert paths.count("/api/now/table/sys_ca_certificate") == 1
    assert not [p for p in paths if p.endswith("/file")]
    # The mappings were still looked up: the run did check them.
    assert paths.count(USER_CERT_PATH) == 1
    plugin_step = _role_task(rerun, "Activate the mutual authentication plugin")
    assert plugin_step["status"] == "skipped"


def test_first_run_on_a_fresh_instance_checks_everything_before_the_first_write(
    twenty: dict[str, t.Any],
) -> None:
    first, log = twenty["first"], twenty["first_log"]
    assert first.rc == 0, first.stdout[-3000:]
    paths = [r["path"] for r in log]
    first_write = next(i for i, r in enumerate(log) if r["method"] in WRITES)
    # The dictionary is read only once the certificate tables exist, so not on a fresh instance.
    for path in PREFLIGHT_ONLY[:2] + PREFLIGHT_ONLY[-1:]:
        assert path in paths[:first_write], path
    # The plugin was inactive, so the plugin step ran and activated it.
    assert any(
        r["method"] == "POST" and r["path"].startswith("/api/sn_cicd/plugin/")
        for r in log
    )
    assert len(twenty["fleet"].mappings("twenty.robot20")) == 1


def test_legacy_true_preflight_checks_everything_on_every_run(
    twenty: dict[str, t.Any],
) -> None:
    run, log = twenty["always"], twenty["always_log"]
    assert run.rc == 0, run.stdout[-3000:]
    paths = [r["path"] for r in log]
    for path in PREFLIGHT_ONLY:
        assert path in paths, path
    assert {r["method"] for r in log} == {"GET"}
    check = _role_task(
        run, "Check that the instance can do certificate-based authentication"
    )
    assert check["result"]["facts"]["checked"] == "full"


def test_auto_preflight_stops_a_fresh_instance_before_any_write(
    snow_instance_factory: t.Callable[..., SnowInstance],
    playbook: t.Callable[..., t.Any],
    tmp_path: Path,
) -> None:
    snow = snow_instance_factory(plugin_delay=0.2, publish_delay=0.2)
    fleet = Fleet.numbered(tmp_path, snow, 2, "norole")
    snow.clear_requests()

    run = fleet.run(
        playbook,
        "provision.yml",
        servicenow_cba_instance={
            "host": snow.host,
            "username": snow.no_sso_user,
            "password": snow.no_sso_password,
            "ca_path": snow.ca_path,
        },
    )

    assert run.rc != 0
    assert f"user {snow.no_sso_user} lacks role sso_config_admin" in run.stdout
    assert snow.no_sso_password not in run.stdout
    log = [r for r in snow.requests() if r["port"] == "main"]
    # Nothing was written: the plugin was not even activated, so its tables do not exist yet.
    assert [r for r in log if r["method"] in WRITES] == []


def test_in_waves_the_windows_skip_message_names_the_wave_only(
    playbook: t.Callable[..., t.Any], tmp_path: Path, snow_instance: SnowInstance
) -> None:
    fleet = Fleet.numbered(tmp_path, snow_instance, 2, "wave")
    run = fleet.run(playbook, "provision.yml", robot_certs_serial=1)

    assert run.rc == 0, run.stdout[-3000:]
    skipped = [
        line for line in run.stdout.splitlines() if "Windows stage skipped for" in line
    ]
    assert len(skipped) == 2, skipped
    assert "skipped for robot01:" in skipped[0] and "robot02" not in skipped[0]
    assert "skipped for robot02:" in skipped[1] and "robot01" not in skipped[1]
