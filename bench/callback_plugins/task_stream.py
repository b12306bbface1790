# Benchmark-only callback: records the stream of tasks a playbook ran (play, task, how many results
# per host, loop items, skips) to the JSON file named by BENCH_TASK_STREAM, so the harness can build
# the no-op playbook that costs Ansible the same dispatch work, and count module runs per host.
from __future__ import annotations

import json
import os
import time
import typing as t

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: task_stream
type: aggregate
short_description: Record the tasks a run dispatched (benchmark only)
description:
  - Writes the plays and tasks of the run, with per-host result counts, to E(BENCH_TASK_STREAM).
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_stream"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.plays: list[dict[str, t.Any]] = []
        self.tasks: dict[str, dict[str, t.Any]] = {}

    def v2_playbook_on_play_start(self, play: t.Any) -> None:
        self.plays.append({"name": play.get_name(), "hosts": play.hosts, "tasks": []})

    def v2_playbook_on_task_start(self, task: t.Any, is_conditional: bool) -> None:
        entry = self.tasks.get(task._uuid)
        if entry is None:
            entry = {
                "name": task.get_name(),
                "action": task.action,
                "run_once": bool(task.run_once),
                "delegate_to": task.delegate_to,
                "hosts": {},
                "started": time.monotonic(),
            }
            self.tasks[task._uuid] = entry
            self.plays[-1]["tasks"].append(entry)

    def _count(self, result: t.Any, status: str) -> None:
        entry = self.tasks.get(result._task._uuid)
        if entry is None:
            return
        host = entry["hosts"].setdefault(
            result._host.get_name(),
            {"results": 0, "items": 0, "skipped": 0, "changed": 0},
        )
        items = result._result.get("results")
        host["results"] += 1
        host["items"] += len(items) if isinstance(items, list) else 0
        host["skipped"] += int(status == "skipped")
        host["changed"] += int(bool(result._result.get("changed")))

    def v2_runner_on_ok(self, result: t.Any) -> None:
        self._count(result, "ok")

    def v2_runner_on_failed(self, result: t.Any, ignore_errors: bool = False) -> None:
        self._count(result, "failed")

    def v2_runner_on_skipped(self, result: t.Any) -> None:
        self._count(result, "skipped")

    def v2_playbook_on_stats(self, stats: t.Any) -> None:
        path = os.environ.get("BENCH_TASK_STREAM")
        # The linear strategy runs one task on every host before the next starts, so a task's wall time
        # is the gap to the next task's start.
        entries = [entry for play in self.plays for entry in play["tasks"]]
        ended = time.monotonic()
        for entry, following in zip(entries, [*entries[1:], None], strict=True):
            entry["seconds"] = round(
                (following["started"] if following else ended) - entry["started"], 3
            )
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump({"plays": self.plays}, handle, indent=1)
