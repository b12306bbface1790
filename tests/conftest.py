"""Shared pytest fixtures: run real playbooks with the in-place collection and read their results."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CALLBACKS = REPO / "tests" / "integration" / "callback_plugins"

# Unit tests import the collection as ansible_collections.snowrpa.robot_certs from the in-place link.
sys.path.insert(0, str(REPO / ".collections"))
# Tests are imported with --import-mode=importlib (test file names repeat across folders); shared
# helpers of the integration tests are imported by plain name.
sys.path.insert(0, str(REPO / "tests" / "integration"))

# The local ServiceNow test double's fixtures, for every test.
from tests.servicenow_double.fixture import snow_instance, snow_instance_factory  # noqa: E402, F401  pylint: disable=unused-import


@dataclasses.dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    results: list[dict[str, t.Any]]

    def task(self, name: str, host: str | None = None) -> dict[str, t.Any]:
        """The result of the task named NAME (the last one, if it ran more than once)."""
        found = [
            r
            for r in self.results
            if r["task"] == name and (host is None or r["host"] == host)
        ]
        if not found:
            raise AssertionError(
                f"task {name!r} has no result; tasks run: {[r['task'] for r in self.results]}"
            )
        return found[-1]["result"]

    def changed_tasks(self) -> list[str]:
        return [r["task"] for r in self.results if r["result"].get("changed")]


def run_playbook(
    playbook: str | os.PathLike[str],
    *,
    tmp_path: Path,
    extra_vars: dict[str, t.Any] | None = None,
    inventory: str | os.PathLike[str] | None = None,
    check: bool = False,
    diff: bool = False,
    verbosity: int = 0,
    env: dict[str, str] | None = None,
    timeout: int = 600,
) -> PlaybookRun:
    """Run ansible-playbook from the repository's virtual environment and collect every task result."""
    results_file = (
        tmp_path / f"results-{len(list(tmp_path.glob('results-*.jsonl')))}.jsonl"
    )
    command = [str(VENV_BIN / "ansible-playbook"), str(playbook)]
    command += ["-i", str(inventory) if inventory else "localhost,"]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    if check:
        command.append("--check")
    if diff:
        command.append("--diff")
    if verbosity:
        command.append("-" + "v" * verbosity)
    run_env = dict(os.environ)
    run_env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_CALLBACK_PLUGINS=str(CALLBACKS),
        ANSIBLE_CALLBACKS_ENABLED="record_results",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        RECORD_RESULTS_FILE=str(results_file),
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    if env:
        run_env.update(env)
    proc = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=run_env,
        cwd=REPO,
        timeout=timeout,
        check=False,
    )
    results = []
    if results_file.exists():
        results = [
            json.loads(line)
            for line in results_file.read_text(encoding="utf-8").splitlines()
            if line
        ]
    return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, results)


@pytest.fixture
def playbook(tmp_path: Path) -> t.Callable[..., PlaybookRun]:
    """Call as playbook(path, extra_vars=..., check=..., diff=...) to run a real playbook."""

    def _run(path: str | os.PathLike[str], **kwargs: t.Any) -> PlaybookRun:
        return run_playbook(path, tmp_path=tmp_path, **kwargs)

    return _run
