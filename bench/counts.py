"""Counts for bench/results.md: ServiceNow requests per provision.yml run, and module runs and file
transfers per Windows host in provision.yml.

ServiceNow: provision.yml runs for N hostless robots against the local test double
(tests/servicenow_double), whose request log lists every request it answered. Windows: no Windows
host exists here, so the count is static: the task list of provision.yml, following its
include_role/include_tasks into the roles, classified by what runs on the Windows host.
"""

from __future__ import annotations

import collections
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
ROLES = REPO / "roles"
PREFIX = "snowrpa.robot_certs."

# Tasks that run in the controller process only: nothing is sent to the host.
CONTROLLER_ONLY = {
    "ansible.builtin.set_fact",
    "ansible.builtin.debug",
    "ansible.builtin.assert",
    "ansible.builtin.fail",
    "ansible.builtin.meta",
    "ansible.builtin.include_vars",
    "ansible.builtin.add_host",
    "ansible.builtin.group_by",
    "ansible.builtin.validate_argument_spec",
    "ansible.builtin.pause",
}
# Actions that copy a file to the host before or instead of running a module.
FILE_TRANSFERS = {
    "ansible.builtin.copy",
    "ansible.builtin.template",
    "ansible.builtin.script",
    "ansible.builtin.unarchive",
    "ansible.windows.win_copy",
    "ansible.windows.win_template",
    "community.windows.win_unzip",
}
INCLUDES = {
    "ansible.builtin.include_tasks",
    "ansible.builtin.import_tasks",
    "include_tasks",
    "import_tasks",
}
ROLE_INCLUDES = {
    "ansible.builtin.include_role",
    "ansible.builtin.import_role",
    "include_role",
    "import_role",
}
KEYWORDS = {
    "name", "when", "loop", "loop_control", "vars", "register", "delegate_to", "run_once", "become", "become_user",
    "become_method", "tags", "ignore_errors", "ignore_unreachable", "changed_when", "failed_when", "no_log", "notify",
    "environment", "args", "until", "retries", "delay", "with_items", "block", "rescue", "always", "any_errors_fatal",
    "check_mode", "diff", "throttle", "timeout", "module_defaults", "delegate_facts", "listen",
}  # fmt: skip


def _action(task: dict[str, t.Any]) -> str:
    return next((key for key in task if key not in KEYWORDS), "?")


def _walk(
    tasks: list[dict[str, t.Any]],
    here: Path,
    role: str,
    conditions: list[str],
    found: list[dict[str, t.Any]],
) -> None:
    for task in tasks or []:
        when = task.get("when", [])
        own = when if isinstance(when, list) else [str(when)] if when else []
        cond = list(dict.fromkeys(conditions + own))
        if "block" in task:
            for part in ("block", "rescue", "always"):
                _walk(task.get(part, []), here, role, cond, found)
            continue
        action = _action(task)
        if action in INCLUDES:
            target = (
                task[action]
                if isinstance(task[action], str)
                else task[action].get("file")
            )
            _walk(yaml.safe_load((here / target).read_text()), here, role, cond, found)
        elif action in ROLE_INCLUDES:
            spec = task[action]
            name = spec["name"].removeprefix(PREFIX)
            folder = ROLES / name / "tasks"
            _walk(
                yaml.safe_load(
                    (folder / f"{spec.get('tasks_from', 'main')}.yml").read_text()
                ),
                folder,
                name,
                cond,
                found,
            )
        else:
            found.append(
                {
                    "role": role,
                    "name": task.get("name", "?"),
                    "action": action,
                    "delegated": str(task.get("delegate_to", ""))
                    in ("localhost", "127.0.0.1"),
                    "loop": "loop" in task or "with_items" in task,
                    "conditions": cond,
                }
            )


def windows_tasks() -> list[dict[str, t.Any]]:
    """Every task provision.yml can run, in order, with its conditions."""
    found: list[dict[str, t.Any]] = []
    for play in yaml.safe_load((REPO / "playbooks" / "provision.yml").read_text()):
        _walk(play.get("tasks", []), REPO / "playbooks", "playbook", [], found)
    return found


def windows_section() -> list[str]:
    try:
        tasks = windows_tasks()
    except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
        return [
            "## Windows module runs and file transfers",
            "",
            f"Not counted: provision.yml could not be read ({exc}).",
            "",
        ]
    on_host = [
        t for t in tasks if not t["delegated"] and t["action"] not in CONTROLLER_ONLY
    ]
    transfers = [t for t in on_host if t["action"] in FILE_TRANSFERS]
    conditional = [
        t
        for t in on_host
        if any("robot_os_build is not defined" in c for c in t["conditions"])
    ]
    always = len(on_host) - len(conditional)
    lines = [
        "## Windows module runs and file transfers per host (provision.yml, counted statically)",
        "",
        "No Windows host exists on this machine, so this is counted from the task list: provision.yml and every",
        "task file it includes, a task counted as a module run on the Windows host when it is neither delegated",
        "to the controller nor a controller-only action (set_fact, debug, assert, ...). `win_cert_import` is an",
        "action plugin: it reads the PKCS#12 on the controller and sends it inside the module arguments, so it is",
        "one module run and no file transfer. No run reads the host's build first: for a build below 17763, or an",
        "unknown one, win_cert_import re-encodes a modern PKCS#12 as legacy on the controller (or sends both",
        "encodings) within that same run.",
        "",
        "| task | action | runs on the host | condition |",
        "|---|---|---|---|",
    ]
    for task in on_host:
        cond = (
            "; ".join(
                f"`{c}`"
                for c in task["conditions"]
                if "windows" in c or "os_build" in c
            ).replace("|", "\\|")
            or "always"
        )
        lines.append(
            f"| {task['role']}: {task['name']} | `{task['action']}` | yes{' (loop)' if task['loop'] else ''} | {cond} |"
        )
    if conditional:
        runs = (
            f"**{always}** when the inventory gives `robot_os_build`, **{len(on_host)}** when it does not "
            "(the run that reads the build)"
        )
    else:
        runs = (
            f"**{len(on_host)}**, whether or not the inventory gives `robot_os_build`"
        )
    lines += [
        "",
        f"- module runs per Windows host: {runs}; target at most 2",
        f"- file transfers per Windows host: **{len(transfers)}** (target 0)",
        f"- controller-side tasks in the same run (delegated or controller-only): {len(tasks) - len(on_host)}",
        "",
    ]
    return lines


def _provision(fleet: t.Any, tmp: Path, forks: int) -> subprocess.CompletedProcess[str]:
    bin_dir = REPO / ".venv" / "bin"
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_FORKS=str(forks),
        ANSIBLE_NOCOLOR="1",
    )
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    variables = fleet.extra_vars(servicenow_cba_plugin_poll_interval=1)
    command = [
        str(bin_dir / "ansible-playbook"),
        str(REPO / "playbooks" / "provision.yml"),
        "-i",
        str(fleet.inventory),
    ]
    return subprocess.run(
        [*command, "-e", json.dumps(variables)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        check=False,
    )


def _path_kind(path: str) -> str:
    """The path with a trailing sys_id or progress id folded, so requests group by kind."""
    head, _slash, last = path.split("?")[0].rpartition("/")
    return (
        f"{head}/{{id}}"
        if len(last) == 32 and all(c in "0123456789abcdef" for c in last)
        else path.split("?")[0]
    )


def servicenow_counts(n: int, forks: int) -> dict[str, t.Any]:
    """Requests the double answered for provision.yml with N robots: first run and unchanged re-run."""
    sys.path[:0] = [str(REPO), str(REPO / "tests" / "integration")]
    from roles_fleet import Fleet  # noqa: PLC0415 - test helpers, only when counting

    from tests.servicenow_double.fixture import SnowInstance  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="bench-snow-") as tmp:
        snow = SnowInstance(
            Path(tmp) / "double", plugin_delay=0.2, publish_delay=0.2
        ).start()
        try:
            (Path(tmp) / "fleet").mkdir()
            fleet = Fleet.numbered(Path(tmp) / "fleet", snow, n, "bench")
            snow.clear_requests()
            counts: dict[str, t.Any] = {"n": n}
            for phase in ("first", "re-run"):
                started = time.perf_counter()
                done = _provision(fleet, Path(tmp), forks)
                seconds = time.perf_counter() - started
                log = snow.requests()
                snow.clear_requests()
                if done.returncode != 0:
                    tail = [
                        line
                        for line in done.stdout.splitlines()
                        if "fatal:" in line or "FAILED" in line
                    ][:2]
                    counts[phase] = {
                        "failed": f"rc {done.returncode}: {' '.join(tail)[:400]}",
                        "requests": len(log),
                    }
                    continue
                kinds = collections.Counter(
                    f"{r['method']} {_path_kind(r['path'])}" for r in log
                )
                counts[phase] = {
                    "requests": len(log),
                    "seconds": seconds,
                    "kinds": kinds,
                }
            return counts
        finally:
            snow.stop()


def servicenow_section(sizes: list[int], forks: int) -> list[str]:
    lines = [
        "## ServiceNow requests (provision.yml against the local test double)",
        "",
        "Counted from the double's request log: every request it answered, on both ports, for a fleet of N hostless",
        "robots (no Windows stage). The target for an unchanged re-run is ceil(N/100) + 5 requests.",
        "",
        "| N | first run | re-run | re-run target | met |",
        "|---|---|---|---|---|",
    ]
    details = []
    for n in sizes:
        counts = servicenow_counts(n, forks)
        target = math.ceil(n / 100) + 5
        first, again = counts["first"], counts["re-run"]

        def show(entry: dict[str, t.Any]) -> str:
            return (
                f"failed ({entry['failed']}; {entry['requests']} requests)"
                if "failed" in entry
                else str(entry["requests"])
            )

        met = (
            "n/a"
            if "failed" in again
            else (
                "yes"
                if again["requests"] <= target
                else f"no, {again['requests'] / target:.1f} times the target"
            )
        )
        lines.append(f"| {n} | {show(first)} | {show(again)} | {target} | {met} |")
        for phase, entry in (("first run", first), ("re-run", again)):
            if "kinds" in entry:
                top = ", ".join(
                    f"{kind}: {count}" for kind, count in entry["kinds"].most_common(8)
                )
                details.append(f"- N={n}, {phase} ({entry['seconds']:.0f} s): {top}")
    return [*lines, "", "Requests by method and path:", "", *details, ""]


__all__ = (
    "servicenow_counts",
    "servicenow_section",
    "windows_section",
    "windows_tasks",
)
