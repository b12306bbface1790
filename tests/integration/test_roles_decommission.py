"""decommission.yml removes one robot's mappings and files and leaves the rest of the fleet alone."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from roles_fleet import (
    PASSPHRASE,
    Fleet,
    recap_changed,
)

from tests.servicenow_double.fixture import SnowInstance

# Playbook runs against the ServiceNow double: seconds each, a minute on a busy machine.
pytestmark = pytest.mark.slow


def test_decommission_removes_only_the_named_robot(
    playbook: t.Callable[..., t.Any],
    tmp_path: Path,
    snow_instance: SnowInstance,
) -> None:
    fleet = Fleet.numbered(tmp_path, snow_instance, 2, "dec")
    provision = fleet.run(playbook, "provision.yml")
    assert provision.rc == 0, provision.stdout[-3000:]
    kept_p12 = fleet.dir("robot01") / "client.p12"
    gone_cert = tmp_path / "robot02-client.crt"
    gone_key = tmp_path / "robot02-client.key"
    gone_cert.write_bytes((fleet.dir("robot02") / "client.crt").read_bytes())
    gone_key.write_bytes((fleet.dir("robot02") / "client.key").read_bytes())
    assert snow_instance.login_with(gone_cert, gone_key) == "dec.robot02"

    run = fleet.run(playbook, "decommission.yml", decommission_hosts="robot02")

    assert run.rc == 0, run.stdout[-3000:]
    assert fleet.mappings("dec.robot02") == []
    assert snow_instance.login_with(gone_cert, gone_key) != "dec.robot02"
    assert not fleet.dir("robot02").exists()
    assert len(fleet.mappings("dec.robot01")) == 1
    assert snow_instance.login_with_pkcs12(kept_p12, PASSPHRASE) == "dec.robot01"
    assert (fleet.certs / "ca" / "robot-ca.crt").exists()

    again = fleet.run(playbook, "decommission.yml", decommission_hosts="robot02")
    assert again.rc == 0, again.stdout[-3000:]
    assert set(recap_changed(again.stdout).values()) == {0}
    assert "robot02: no certificates in " in again.stdout
    assert "(never issued, or decommissioned)" in again.stdout
