"""robot_identity issues a whole wave in one task; each robot still gets its own result, or fails alone."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_playbook
from tests.helpers import LEGACY_PBE, pkcs12_encryption, sh

PLAYBOOK = Path(__file__).parent / "playbooks" / "identity.yml"
PASSPHRASE = "identity-test-pfx-passphrase"


def _inventory(tmp_path: Path, robots: dict[str, dict[str, object]]) -> Path:
    lines = ["[robots]"]
    for name, variables in robots.items():
        extra = " ".join(f"{key}={value}" for key, value in variables.items())
        lines.append(f"{name} ansible_connection=local {extra}".rstrip())
    path = tmp_path / "inventory.ini"
    path.write_text("\n".join(lines) + "\n")
    return path


def _profile(p12: Path) -> str:
    return "legacy" if LEGACY_PBE in pkcs12_encryption(p12, PASSPHRASE) else "modern"


def test_each_robot_gets_its_own_name_and_profile(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    inventory = _inventory(
        tmp_path,
        {
            "robot01": {"robot_cert_name": "rpa-east-01", "robot_os_build": 14393},
            "robot02": {"robot_os_build": 20348},
            "robot03": {},
            "robot04": {"robot_pkcs12_profile": "legacy"},
        },
    )
    run = run_playbook(
        PLAYBOOK,
        tmp_path=tmp_path,
        inventory=inventory,
        extra_vars={"out_dir": str(out)},
    )

    assert run.rc == 0, run.stdout[-3000:]
    assert not (out / "robot01").exists()
    subject = sh(
        "openssl",
        "x509",
        "-noout",
        "-subject",
        "-in",
        str(out / "rpa-east-01" / "client.crt"),
    )
    assert "CN=rpa-east-01" in subject.stdout.replace(" ", "")
    assert _profile(out / "rpa-east-01" / "client.p12") == "legacy"
    assert _profile(out / "robot02" / "client.p12") == "modern"
    assert _profile(out / "robot03" / "codesign.p12") == "modern"
    assert _profile(out / "robot04" / "client.p12") == "legacy"
    recorded = {
        r["host"]: r["result"]["ansible_facts"]["robot_identity_issued"]
        for r in run.results
        if r["action"] == "ansible.builtin.set_fact"
        and "robot_identity_issued" in r["result"].get("ansible_facts", {})
    }
    assert recorded["robot01"]["name"] == "rpa-east-01"
    fingerprint = sh(
        "openssl",
        "x509",
        "-noout",
        "-fingerprint",
        "-sha1",
        "-in",
        str(out / "robot02" / "client.crt"),
    )
    assert (
        fingerprint.stdout.split("=")[1].strip().replace(":", "")
        == recorded["robot02"]["client"]["thumbprint"]
    )


def test_legacy_for_unknown_builds_when_asked(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    inventory = _inventory(tmp_path, {"robot01": {}})
    run = run_playbook(
        PLAYBOOK,
        tmp_path=tmp_path,
        inventory=inventory,
        extra_vars={
            "out_dir": str(out),
            "robot_identity_unknown_build_profile": "legacy",
        },
    )

    assert run.rc == 0, run.stdout[-3000:]
    assert _profile(out / "robot01" / "client.p12") == "legacy"


def test_a_robot_whose_identity_fails_fails_alone_with_one_line(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    inventory = _inventory(tmp_path, {"robot01": {}, "robot02": {}, "robot03": {}})
    (out / "robot02").mkdir(parents=True)
    (out / "robot02" / "client.crt").write_text("not a certificate\n")

    run = run_playbook(
        PLAYBOOK,
        tmp_path=tmp_path,
        inventory=inventory,
        extra_vars={"out_dir": str(out)},
    )

    assert run.rc != 0
    failed = [r for r in run.results if r["status"] == "failed"]
    assert [r["host"] for r in failed] == ["robot02"]
    message = failed[0]["result"]["msg"]
    assert (
        message.startswith("robot02: generate: ")
        and "client.crt" in message
        and "\n" not in message
    )
    for robot in ("robot01", "robot03"):
        assert (out / robot / "client.p12").exists() and (
            out / robot / "codesign.p12"
        ).exists()


def test_check_mode_names_the_new_robot_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    inventory = _inventory(tmp_path, {"robot01": {}})
    assert (
        run_playbook(
            PLAYBOOK,
            tmp_path=tmp_path,
            inventory=inventory,
            extra_vars={"out_dir": str(out)},
        ).rc
        == 0
    )
    inventory = _inventory(tmp_path, {"robot01": {}, "robot02": {}})
    before = sorted(p.name for p in out.rglob("*"))

    run = run_playbook(
        PLAYBOOK,
        tmp_path=tmp_path,
        inventory=inventory,
        extra_vars={"out_dir": str(out)},
        check=True,
    )

    assert run.rc == 0, run.stdout[-3000:]
    assert "robot02: check mode - no certificates in " in run.stdout
    assert sorted(p.name for p in out.rglob("*")) == before
    ended = {
        r["host"]
        for r in run.results
        if r["action"] == "ansible.builtin.set_fact"
        and "robot_identity_issued" in r["result"].get("ansible_facts", {})
    }
    assert ended == {"robot01"}


def test_a_wrong_wave_setting_stops_the_wave_once_before_anything_is_written(
    tmp_path: Path,
) -> None:
    out = tmp_path / "certs"
    inventory = _inventory(tmp_path, {"robot01": {}, "robot02": {}, "robot03": {}})

    run = run_playbook(
        PLAYBOOK,
        tmp_path=tmp_path,
        inventory=inventory,
        extra_vars={"out_dir": str(out), "robot_identity_valid_days": "a year"},
    )

    assert run.rc != 0
    failed = [r for r in run.results if r["status"] == "failed"]
    assert len(failed) == 1, run.stdout[-3000:]
    message = failed[0]["result"]["msg"]
    assert message.startswith("robot_identity: ") and "\n" not in message
    assert "robot_identity_valid_days" in message and "-e wave" in message
    assert "Traceback" not in run.stdout + run.stderr
    assert not out.exists()


def test_a_robot_with_a_wrong_build_number_fails_alone(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    inventory = _inventory(
        tmp_path, {"robot01": {}, "robot02": {"robot_os_build": "win2019"}}
    )

    run = run_playbook(
        PLAYBOOK,
        tmp_path=tmp_path,
        inventory=inventory,
        extra_vars={"out_dir": str(out)},
    )

    assert run.rc != 0
    failed = [r for r in run.results if r["status"] == "failed"]
    assert [r["host"] for r in failed] == ["robot02"], run.stdout[-3000:]
    message = failed[0]["result"]["msg"]
    assert message.startswith("robot02: ") and "\n" not in message
    assert "win2019" in message or "target_os_build" in message
    assert (out / "robot01" / "client.p12").exists()
    assert not (out / "robot02" / "client.p12").exists()


def test_an_unchanged_wave_runs_one_task_per_robot(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    robots = {f"robot{i:02d}": {} for i in range(1, 6)}
    inventory = _inventory(tmp_path, robots)
    first = run_playbook(
        PLAYBOOK,
        tmp_path=tmp_path,
        inventory=inventory,
        extra_vars={"out_dir": str(out)},
    )
    assert first.rc == 0, first.stdout[-3000:]

    again = run_playbook(
        PLAYBOOK,
        tmp_path=tmp_path,
        inventory=inventory,
        extra_vars={"out_dir": str(out)},
    )

    assert again.rc == 0, again.stdout[-3000:]
    assert "changed=1" not in again.stdout and "changed=2" not in again.stdout
    per_robot = [
        r["task"].split(" : ")[-1] for r in again.results if r["host"] == "robot03"
    ]
    # Everything else ran once for the wave: robot03 only records where its identity is.
    assert per_robot == [
        "Record where the robot's identity is, for the ServiceNow and Windows stages"
    ], per_robot
    issued = {
        r["host"]
        for r in again.results
        if "robot_identity_issued" in r["result"].get("ansible_facts", {})
    }
    assert issued == set(robots)


def test_check_mode_reports_a_wrong_build_rather_than_a_missing_certificate(
    tmp_path: Path,
) -> None:
    out = tmp_path / "certs"
    inventory = _inventory(
        tmp_path, {"robot01": {}, "robot02": {"robot_os_build": "win2019"}}
    )

    run = run_playbook(
        PLAYBOOK,
        tmp_path=tmp_path,
        inventory=inventory,
        extra_vars={"out_dir": str(out)},
        check=True,
    )

    failed = [r for r in run.results if r["status"] == "failed"]
    assert [r["host"] for r in failed] == ["robot02"], run.stdout[-3000:]
    assert "robot_os_build" in failed[0]["result"]["msg"]
    assert "robot01: check mode - no certificates in " in run.stdout
    assert not out.exists()
