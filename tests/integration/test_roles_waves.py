"""Waves and failures: a robot whose Windows host cannot be reached fails alone, and
max_fail_percentage stops the roll-out after a wave that failed too often.

robot01 has a Windows host on a closed local port (WinRM connection refused), robot02 has none.
No ServiceNow stage here: this is about how the play treats a failing robot.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

import yaml
from roles_fleet import REPO, Fleet

ROBOTS = {
    "robot01": {
        "robot_snow_user": "wave.robot01",
        "robot_windows_host": True,
        "robot_windows_account": r"EXAMPLE\svc-rpa01",
        "robot_windows_password": "not-used",
        "robot_os_build": 17763,
        "ansible_connection": "winrm",
        "ansible_host": "127.0.0.1",
        "ansible_port": 9,
        "ansible_user": "nobody",
        "ansible_password": "not-used",
        "ansible_winrm_transport": "ntlm",
        "ansible_winrm_scheme": "http",
        "ansible_winrm_operation_timeout_sec": 2,
        "ansible_winrm_read_timeout_sec": 4,
    },
    "robot02": {"robot_snow_user": "wave.robot02"},
}


def _fleet(tmp_path: Path) -> Fleet:
    return Fleet(tmp_path, None, ROBOTS)


def test_an_unreachable_robot_does_not_stop_the_others(
    playbook: t.Callable[..., t.Any], tmp_path: Path
) -> None:
    fleet = _fleet(tmp_path)
    run = fleet.run(playbook, "provision.yml")

    assert run.rc != 0
    failed = {
        r["host"] for r in run.results if r["status"] in ("failed", "unreachable")
    }
    assert failed == {"robot01"}
    # robot01's certificates were issued on the controller before its host was tried.
    assert (fleet.dir("robot01") / "client.p12").exists()
    assert (fleet.dir("robot02") / "client.p12").exists()
    assert (fleet.dir("robot02") / "codesign.p12").exists()
    # The only task that contacted robot01 is the machine-certificate import.
    contacted = [
        r["action"]
        for r in run.results
        if r["host"] == "robot01" and r["status"] == "unreachable"
    ]
    assert contacted == ["snowrpa.robot_certs.win_cert_import"]


def test_max_fail_percentage_stops_the_next_wave(
    playbook: t.Callable[..., t.Any], tmp_path: Path
) -> None:
    fleet = _fleet(tmp_path)
    run = fleet.run(
        playbook,
        "provision.yml",
        robot_certs_serial=1,
        robot_certs_max_fail_percentage=0,
    )

    assert run.rc != 0
    assert (fleet.dir("robot01") / "client.p12").exists()
    assert not fleet.dir("robot02").exists(), (
        "the second wave ran after the first one failed"
    )


def test_windows_stage_is_two_module_runs_and_copies_no_file() -> None:
    tasks = yaml.safe_load(
        (REPO / "roles" / "windows_robot" / "tasks" / "install.yml").read_text(
            encoding="utf-8"
        )
    )
    runs = [t for t in tasks if "ansible.builtin.assert" not in t]
    assert [next(k for k in t if "." in k) for t in runs] == [
        "snowrpa.robot_certs.win_cert_import",
        "snowrpa.robot_certs.win_cert_import",
    ]
    machine, user = (t["snowrpa.robot_certs.win_cert_import"] for t in runs)
    assert machine["store_location"] == "LocalMachine"
    assert machine["chain"] == "{{ windows_robot_client_chain }}"
    assert machine["key_readers"] == ["{{ robot_windows_account }}"]
    assert "become" not in runs[0]
    assert user["store_location"] == "CurrentUser"
    assert runs[1]["become"] is True
    assert runs[1]["become_user"] == "{{ robot_windows_account }}"
    # The PKCS#12 stays on the controller: the action plugin sends it inside the arguments.
    assert all("pkcs12_path" in args for args in (machine, user))
