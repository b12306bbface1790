"""Bad inventory input stops every playbook before anything is written, with one clear line."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from roles_fleet import Fleet

BAD_FLEETS: dict[str, tuple[dict[str, dict[str, t.Any]], str]] = {
    "robot without its ServiceNow user": (
        {
            "robot01": {"robot_snow_user": "bad.robot01"},
            "robot02": {},
        },
        "robot02: robot_snow_user is not set; set it in the inventory to the user_name of the robot's ServiceNow service account",
    ),
    "two robots sharing one certificate name": (
        {
            "robot01": {"robot_snow_user": "bad.robot01", "robot_cert_name": "shared"},
            "robot02": {"robot_snow_user": "bad.robot02", "robot_cert_name": "shared"},
            "robot03": {"robot_snow_user": "bad.robot03"},
        },
        "robots share a certificate name: shared (robot01, robot02); give each robot its own robot_cert_name",
    ),
    "unknown PKCS#12 profile": (
        {
            "robot01": {"robot_snow_user": "bad.robot01"},
            "robot02": {
                "robot_snow_user": "bad.robot02",
                "robot_pkcs12_profile": "aes",
            },
        },
        "robot02: unknown PKCS#12 profile 'aes'; use auto, modern (Windows build 17763 and later) or legacy (older Windows)",
    ),
}


# Every case through provision.yml; rotate.yml shares the validation play, so one case there.
RUNS = [(case, "provision.yml") for case in BAD_FLEETS]
RUNS.append(("robot without its ServiceNow user", "rotate.yml"))


@pytest.mark.parametrize(("case", "playbook_name"), RUNS)
def test_bad_inventory_stops_before_anything_is_written(
    playbook: t.Callable[..., t.Any], tmp_path: Path, case: str, playbook_name: str
) -> None:
    robots, message = BAD_FLEETS[case]
    # An unreachable instance: any ServiceNow request would fail the run with another message.
    fleet = Fleet(tmp_path, None, robots)
    run = fleet.run(
        playbook,
        playbook_name,
        robot_certs_servicenow=True,
        servicenow_cba_instance={
            "host": "127.0.0.1:9",
            "username": "u",
            "password": "p",
        },
    )

    assert run.rc != 0
    failed = [r for r in run.results if r["status"] == "failed"]
    assert failed, run.stdout
    assert {r["result"]["msg"] for r in failed} == {message}
    assert message in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
    assert not fleet.certs.exists(), (
        "a file was written although the inventory is wrong"
    )
    # Only the validation tasks ran: no task of the provisioning play started.
    assert {r["action"] for r in run.results} <= {
        "ansible.builtin.include_role",
        "ansible.builtin.assert",
        "ansible.builtin.validate_argument_spec",
    }


def test_decommission_needs_the_robots_named(
    playbook: t.Callable[..., t.Any], tmp_path: Path
) -> None:
    fleet = Fleet(tmp_path, None, {"robot01": {"robot_snow_user": "bad.robot01"}})
    run = fleet.run(playbook, "decommission.yml")

    assert run.rc != 0
    assert (
        "decommission_hosts is not set; give the robots to decommission as a host pattern, "
        "for example -e decommission_hosts=robot05"
    ) in run.stdout
    assert "Traceback" not in run.stdout + run.stderr


def test_rotate_refuses_a_window_as_long_as_the_validity(
    playbook: t.Callable[..., t.Any], tmp_path: Path
) -> None:
    fleet = Fleet(tmp_path, None, {"robot01": {"robot_snow_user": "rpa.robot01"}})
    run = fleet.run(playbook, "rotate.yml", rotate_within_days=400)

    assert run.rc != 0
    assert (
        "rotate_within_days 400 must be 0 or more and less than robot_identity_valid_days 365"
        in run.stdout
    )
    assert not fleet.certs.exists()
