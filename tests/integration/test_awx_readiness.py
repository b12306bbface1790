"""What AWX needs: the playbooks run under ansible-runner, and the execution environment builds a context."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

import ansible_runner
import pytest
import yaml
from roles_fleet import (
    PASSPHRASE,
    PLAYBOOKS,
    REPO,
    Fleet,
)

from tests.servicenow_double.fixture import SnowInstance

BIN = Path(sys.executable).parent


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.split("[", 1)[0].lower().replace("_", "-")] = version.strip()
    return pins


@pytest.mark.slow
def test_provision_runs_under_ansible_runner(
    tmp_path: Path,
    snow_instance: SnowInstance,
) -> None:
    fleet = Fleet.numbered(tmp_path / "fleet", snow_instance, 2, "awx", [17763, None])
    private = tmp_path / "runner"
    (private / "env").mkdir(parents=True)
    # As an AWX job: the project's ansible.cfg, survey answers as extra vars, the inventory file.
    (private / "env" / "envvars").write_text(
        yaml.safe_dump(
            {
                "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                "PATH": f"{BIN}:/usr/bin:/bin",
            }
        ),
        encoding="utf-8",
    )
    (private / "env" / "extravars").write_text(
        yaml.safe_dump(
            fleet.extra_vars(robot_certs_serial=1, robot_certs_max_fail_percentage=0)
        ),
        encoding="utf-8",
    )

    result = ansible_runner.run(
        private_data_dir=str(private),
        project_dir=str(REPO),
        playbook=str(PLAYBOOKS / "provision.yml"),
        inventory=str(fleet.inventory),
        ident="provision",
        quiet=True,
    )

    artifacts = private / "artifacts" / "provision"
    stdout = (artifacts / "stdout").read_text(encoding="utf-8")
    assert result.status == "successful", stdout[-3000:]
    assert result.rc == 0
    assert (artifacts / "rc").read_text(encoding="utf-8").strip() == "0"
    assert (artifacts / "status").read_text(encoding="utf-8").strip() == "successful"
    events = [
        json.loads(p.read_text(encoding="utf-8"))
        for p in (artifacts / "job_events").glob("*.json")
    ]
    stats = [e for e in events if e.get("event") == "playbook_on_stats"]
    assert len(stats) == 1
    assert set(stats[0]["event_data"]["ok"]) == {"robot01", "robot02"}
    assert not stats[0]["event_data"].get("failures")
    # serial: 1 means one wave per robot: the provisioning play started twice as many batches.
    plays = [e for e in events if e.get("event") == "playbook_on_play_start"]
    assert len(plays) == 3
    assert "PLAY RECAP" in stdout
    assert PASSPHRASE not in stdout
    assert snow_instance.admin_password not in stdout
    for event in events:
        assert PASSPHRASE not in json.dumps(event)
    for host, variables in fleet.robots.items():
        assert (
            snow_instance.login_with_pkcs12(fleet.dir(host) / "client.p12", PASSPHRASE)
            == variables["robot_snow_user"]
        )


def test_execution_environment_builds_a_context(tmp_path: Path) -> None:
    if shutil.which("ansible-builder", path=str(BIN)) is None:
        pytest.fail(
            "ansible-builder is not installed in the virtual environment; run make bootstrap"
        )
    context = tmp_path / "context"
    done = subprocess.run(
        [
            str(BIN / "ansible-builder"),
            "create",
            "-f",
            str(REPO / "meta" / "execution-environment.yml"),
            "-c",
            str(context),
            "--output-filename",
            "Containerfile",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    containerfile = (context / "Containerfile").read_text(encoding="utf-8")
    assert 'ARG EE_BASE_IMAGE="quay.io/centos/centos:stream9"' in containerfile
    assert 'ARG PYCMD="/usr/bin/python3.11"' in containerfile
    assert "ansible-core==2.19.14" in containerfile
    build = context / "_build"
    assert (build / "requirements.txt").read_text() == (
        REPO / "meta" / "ee-requirements.txt"
    ).read_text()
    assert (build / "bindep.txt").read_text() == (
        REPO / "meta" / "ee-bindep.txt"
    ).read_text()
    galaxy = yaml.safe_load((build / "requirements.yml").read_text(encoding="utf-8"))
    assert [c["name"] for c in galaxy["collections"]] == ["ansible.windows"]

    # The builder's own introspection merges what goes into the image: our pins must be in it.
    merged = subprocess.run(
        [str(BIN / "python"), str(build / "scripts" / "introspect.py"), "introspect",
         f"--user-pip={build / 'requirements.txt'}", f"--user-bindep={build / 'bindep.txt'}"],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert merged.returncode == 0, merged.stderr
    assert "cryptography==50.0.2" in merged.stdout
    assert "krb5-devel [platform:rpm compile]" in merged.stdout

    # The image's pins are the ones the test suite runs with (requirements.txt).
    ours = _pins(REPO / "requirements.txt")
    for name, version in _pins(REPO / "meta" / "ee-requirements.txt").items():
        assert ours.get(name) == version, (
            f"{name}=={version} in meta/ee-requirements.txt, {ours.get(name)} in requirements.txt"
        )


def test_playbooks_keep_no_cross_host_state() -> None:
    """Job slicing runs each slice as its own job: only run_once controller tasks may look across hosts."""
    for path in [
        *sorted((REPO / "roles").glob("*/tasks/*.yml")),
        *sorted(PLAYBOOKS.glob("*.yml")),
    ]:
        tasks = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        for task in _walk(tasks):
            text = json.dumps(task)
            if (
                "hostvars[" in text
                or "ansible_play_hosts" in text
                or "'extract', hostvars" in text
            ):
                assert task.get("run_once") is True, (
                    f"{path.name}: task {task.get('name')!r} reads other hosts without run_once"
                )
            assert "add_host" not in text and "group_by" not in text, (
                f"{path.name}: {task.get('name')!r}"
            )


def _walk(items: t.Any) -> t.Iterator[dict[str, t.Any]]:
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        if "tasks" in item or "hosts" in item:
            yield from _walk(item.get("tasks", []))
            continue
        yield item
        for key in ("block", "rescue", "always"):
            yield from _walk(item.get(key, []))
