"""robot_identity issues a whole wave in one task; each robot still gets its own result, or fails alone."""

from __future__ import annotations

import typing as t
from pathlib import Path

from tests.conftest import REPO, run_playbook
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


def _issue(
    tmp_path: Path, inventory: Path, *, check: bool = False, **settings: object
) -> t.Any:
    """The identity playbook for INVENTORY, writing into tmp_path/certs."""
    return run_playbook(
        PLAYBOOK,
        tmp_path=tmp_path,
        inventory=inventory,
        extra_vars={"out_dir": str(tmp_path / "certs"), **settings},
        check=check,
    )


def _serial(cert: Path) -> str:
    return sh("openssl", "x509", "-noout", "-serial", "-in", str(cert)).stdout


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
    run = _issue(tmp_path, inventory)

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
    run = _issue(tmp_path, inventory, robot_identity_unknown_build_profile="legacy")

    assert run.rc == 0, run.stdout[-3000:]
    assert _profile(out / "robot01" / "client.p12") == "legacy"


def test_a_robot_whose_identity_fails_fails_alone_with_one_line(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    inventory = _inventory(tmp_path, {"robot01": {}, "robot02": {}, "robot03": {}})
    (out / "robot02").mkdir(parents=True)
    (out / "robot02" / "client.crt").write_text("not a certificate\n")

    run = _issue(tmp_path, inventory)

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
    assert _issue(tmp_path, inventory).rc == 0
    inventory = _inventory(tmp_path, {"robot01": {}, "robot02": {}})
    before = sorted(p.name for p in out.rglob("*"))

    run = _issue(tmp_path, inventory, check=True)

    assert run.rc == 0, run.stdout[-3000:]
    assert "robot02: check mode - no certificates in " in run.stdout
    assert "a real run would issue and export them" in run.stdout
    # A real run would change robot02, so check mode says it would.
    assert "robot02                    : ok=2    changed=1" in run.stdout, run.stdout[
        -1500:
    ]
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

    run = _issue(tmp_path, inventory, robot_identity_valid_days="a year")

    assert run.rc != 0
    failed = [r for r in run.results if r["status"] == "failed"]
    assert len(failed) == 1, run.stdout[-3000:]
    message = failed[0]["result"]["msg"]
    assert message.startswith("robot_identity: ") and "\n" not in message
    assert "robot_identity_valid_days" in message and "-e wave" in message
    assert "Traceback" not in run.stdout + run.stderr
    assert not out.exists()


def test_a_robot_with_a_wrong_build_or_name_fails_alone(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    # The wrong robot comes first: the wave's own checks run on it, and must not judge the wave by it.
    inventory = _inventory(
        tmp_path,
        {
            "robot01": {"robot_os_build": "win2019"},
            "robot02": {},
            "robot03": {"robot_os_build": -1},
            "robot04": {"robot_cert_name": "../escaped"},
            "robot05": {"robot_cert_name": "ca"},
        },
    )

    run = _issue(tmp_path, inventory)

    assert run.rc != 0
    failed = {
        r["host"]: r["result"]["msg"] for r in run.results if r["status"] == "failed"
    }
    assert sorted(failed) == ["robot01", "robot03", "robot04", "robot05"], run.stdout[
        -3000:
    ]
    assert all(m.startswith(f"{h}: ") and "\n" not in m for h, m in failed.items())
    assert 'robot_os_build "win2019" is not a Windows build number' in failed["robot01"]
    assert 'robot_os_build "-1"' in failed["robot03"]
    assert 'robot_cert_name "../escaped" is not a plain name' in failed["robot04"]
    assert "CA folder" in failed["robot05"]
    assert (out / "robot02" / "client.p12").exists()
    assert sorted(p.name for p in out.iterdir()) == ["ca", "robot02"]
    assert sorted(p.name for p in (out / "ca").iterdir()) == [
        "robot-ca.crt",
        "robot-ca.key",
    ]
    assert not (tmp_path / "escaped").exists()


def test_an_unchanged_wave_runs_one_task_per_robot(tmp_path: Path) -> None:
    robots = {f"robot{i:02d}": {} for i in range(1, 6)}
    inventory = _inventory(tmp_path, robots)
    first = _issue(tmp_path, inventory)
    assert first.rc == 0, first.stdout[-3000:]

    again = _issue(tmp_path, inventory)

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

    run = _issue(tmp_path, inventory, check=True)

    failed = [r for r in run.results if r["status"] == "failed"]
    assert [r["host"] for r in failed] == ["robot02"], run.stdout[-3000:]
    assert "robot_os_build" in failed[0]["result"]["msg"]
    assert "robot01: check mode - no certificates in " in run.stdout
    assert not out.exists()


def test_wave_settings_every_robot_would_refuse_stop_the_wave_before_the_ca(
    tmp_path: Path,
) -> None:
    out = tmp_path / "certs"
    inventory = _inventory(
        tmp_path,
        {
            "robot01": {},
            "robot02": {"robot_identity_pkcs12_passphrase": "another-passphrase"},
            "robot03": {"robot_cert_name": "robot01"},
        },
    )

    run = _issue(
        tmp_path,
        inventory,
        robot_identity_valid_days=30,
        robot_identity_renew_before_days=30,
        robot_identity_workers=-1,
        robot_identity_ca_subject={"common_name": "CA", "country_name": "USA"},
    )

    assert run.rc != 0
    failed = [r for r in run.results if r["status"] == "failed"]
    assert len(failed) == 1, run.stdout[-3000:]
    message = failed[0]["result"]["msg"]
    assert message.startswith("robot_identity: ") and "\n" not in message
    for expected in (
        "robot_identity_valid_days 30 must be greater than robot_identity_renew_before_days 30",
        "robot_identity_workers must be 0 (one per CPU) or more, got -1",
        "raise robot_identity_valid_days or lower robot_identity_renew_before_days",
        "robot_identity_ca_subject.country_name 'USA' must be a two-letter ISO 3166 code",
        "robot_identity_pkcs12_passphrase differs on robot02 from robot01",
        "robots share a certificate name: robot01 (robot01, robot03)",
    ):
        assert expected in message, message
    assert "another-passphrase" not in run.stdout and PASSPHRASE not in run.stdout
    assert not out.exists()


def test_an_empty_pkcs12_passphrase_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    run = _issue(
        tmp_path,
        _inventory(tmp_path, {"robot01": {}}),
        robot_identity_pkcs12_passphrase="",
    )

    assert run.rc != 0
    assert "robot_identity_pkcs12_passphrase is empty" in run.stdout
    assert not out.exists()


def test_without_an_inventory_file_the_output_folder_must_be_given(
    tmp_path: Path,
) -> None:
    play = tmp_path / "play.yml"
    play.write_text(
        "- hosts: all\n  gather_facts: false\n  roles:\n"
        "    - role: snowrpa.robot_certs.robot_identity\n"
        "      vars:\n        robot_identity_pkcs12_passphrase: host-list-pfx-passphrase\n"
    )
    run = run_playbook(
        play,
        tmp_path=tmp_path,
        inventory="robot01,robot02,",
        extra_vars={"ansible_connection": "local"},
    )

    assert run.rc != 0
    assert (
        "robot_identity_output_dir has no default when the inventory is not a file"
        in run.stdout
    )
    assert not (REPO / "None").exists() and not (tmp_path / "None").exists()


def test_a_damaged_key_points_at_robot_identity_force_which_reissues(
    tmp_path: Path,
) -> None:
    out = tmp_path / "certs"
    inventory = _inventory(tmp_path, {"robot01": {}, "robot02": {}})
    assert _issue(tmp_path, inventory).rc == 0
    serial = _serial(out / "robot01" / "client.crt")
    (out / "robot02" / "client.key").write_text("damaged\n")

    run = _issue(tmp_path, inventory)

    failed = [r for r in run.results if r["status"] == "failed"]
    assert [r["host"] for r in failed] == ["robot02"], run.stdout[-3000:]
    assert (
        "set robot_identity_force: true for this robot (--limit)"
        in failed[0]["result"]["msg"]
    )
    assert "set force: true" not in failed[0]["result"]["msg"]

    forced = _issue(tmp_path, inventory, robot_identity_force=True)

    assert forced.rc == 0, forced.stdout[-3000:]
    verified = sh(
        "openssl",
        "verify",
        "-CAfile",
        str(out / "ca" / "robot-ca.crt"),
        str(out / "robot02" / "client.crt"),
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert _serial(out / "robot01" / "client.crt") != serial


def test_a_bring_your_own_robot_without_its_pkcs12_fails_alone_naming_the_variable(
    tmp_path: Path,
) -> None:
    out = tmp_path / "certs"
    chain = tmp_path / "issuing-ca.pem"
    chain.write_text("not needed: nothing is exported\n")
    run = _issue(
        tmp_path,
        _inventory(tmp_path, {"robot01": {}}),
        robot_identity_ca_source="byo",
        robot_identity_ca_chain_paths=[str(chain)],
    )

    failed = [r for r in run.results if r["status"] == "failed"]
    assert [r["host"] for r in failed] == ["robot01"], run.stdout[-3000:]
    assert failed[0]["result"]["msg"].startswith(
        "robot01: robot_identity_client_pkcs12_src and robot_identity_codesign_pkcs12_src not set"
    )
    assert not out.exists()


def _play(tmp_path: Path, body: str) -> Path:
    """A playbook of the test's own, for what identity.yml does not do (serial, other entry points)."""
    path = tmp_path / "play.yml"
    path.write_text(body)
    return path


def test_a_name_shared_with_a_robot_outside_the_play_or_wave_is_refused(
    tmp_path: Path,
) -> None:
    # robot09 is a robot of the inventory left out of this play (as with --limit); robot02 takes its name.
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        "[robots]\nrobot01 ansible_connection=local\n"
        "robot02 ansible_connection=local robot_cert_name=robot09\n"
        "[later]\nrobot09 ansible_connection=local robot_snow_user=rpa.robot09\n"
    )
    run = _issue(tmp_path, inventory)

    assert run.rc != 0
    assert "robots share a certificate name: robot09 (robot02, robot09)" in run.stdout
    assert not (tmp_path / "certs").exists()


def test_a_per_robot_passphrase_is_refused_in_one_robot_waves_too(
    tmp_path: Path,
) -> None:
    play = _play(
        tmp_path,
        "- hosts: robots\n  gather_facts: false\n  serial: 1\n  roles:\n"
        "    - role: snowrpa.robot_certs.robot_identity\n      vars:\n"
        "        robot_identity_output_dir: '{{ out_dir }}'\n"
        "        robot_identity_key_type: ecdsa\n"
        "        robot_identity_pkcs12_passphrase: play-pfx-passphrase\n",
    )
    inventory = _inventory(
        tmp_path,
        {
            "robot01": {},
            "robot02": {"robot_identity_pkcs12_passphrase": "own-passphrase"},
        },
    )
    run = run_playbook(
        play,
        tmp_path=tmp_path,
        inventory=inventory,
        extra_vars={"out_dir": str(tmp_path / "certs")},
    )

    assert run.rc != 0
    assert (
        "robot_identity_pkcs12_passphrase differs on robot02 from robot01" in run.stdout
    )
    assert (
        "own-passphrase" not in run.stdout and "play-pfx-passphrase" not in run.stdout
    )
    assert not (tmp_path / "certs").exists()


def test_certificate_settings_are_tried_with_cert_generate_before_the_ca(
    tmp_path: Path,
) -> None:
    run = _issue(
        tmp_path,
        _inventory(tmp_path, {"robot01": {}, "robot02": {}}),
        robot_identity_subject={"email_address": "not an email"},
        robot_identity_ca_subject={},
    )

    failed = [r for r in run.results if r["status"] == "failed"]
    assert len(failed) == 1, run.stdout[-3000:]
    message = failed[0]["result"]["msg"]
    assert "robot_identity_subject.email_address 'not an email' is not valid" in message
    assert "give robot_identity_ca_subject (at least common_name)" in message
    assert not (tmp_path / "certs").exists()

    run = _issue(
        tmp_path,
        _inventory(tmp_path, {"robot01": {}}),
        robot_identity_key_type="rsa",
        robot_identity_key_size=100,
    )

    # Wrong for both the robot and the CA certificates: said once.
    (failed,) = [r for r in run.results if r["status"] == "failed"]
    assert (
        failed["result"]["msg"].count(
            "robot_identity_key_size 100 is not supported for RSA"
        )
        == 1
    )
    assert not (tmp_path / "certs").exists()


def test_a_numeric_name_and_a_null_profile_are_read_as_a_user_means_them(
    tmp_path: Path,
) -> None:
    out = tmp_path / "certs"
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        "robots:\n  hosts:\n"
        "    robot01: {ansible_connection: local, robot_cert_name: 1234}\n"
        "    robot02: {ansible_connection: local, robot_pkcs12_profile: null, robot_cert_name: null}\n"
    )
    assert _issue(tmp_path, inventory).rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["1234", "ca", "robot02"]
    assert _profile(out / "robot02" / "client.p12") == "modern"
    again = _issue(tmp_path, inventory)
    assert (
        again.rc == 0
        and "changed=0" in again.stdout
        and "changed=1" not in again.stdout
    )


def test_remove_refuses_a_name_that_is_a_path(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    (out / "robot01").mkdir(parents=True)
    keep = tmp_path / "keep.txt"
    keep.write_text("outside the output folder\n")
    play = _play(
        tmp_path,
        "- hosts: robots\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.include_role:\n"
        "        name: snowrpa.robot_certs.robot_identity\n        tasks_from: remove\n"
        "      vars:\n        robot_identity_output_dir: '{{ out_dir }}'\n",
    )
    run = run_playbook(
        play,
        tmp_path=tmp_path,
        inventory=_inventory(tmp_path, {"robot01": {"robot_cert_name": ".."}}),
        extra_vars={"out_dir": str(out)},
    )

    assert run.rc != 0
    assert (
        'robot_cert_name ".." is not a plain name, so its folder is not deleted'
        in run.stdout
    )
    assert keep.exists() and (out / "robot01").exists()
