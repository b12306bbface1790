# Test-only callback: writes every task result of a playbook run as JSON lines to the file
# named by RECORD_RESULTS_FILE, so tests can assert on module returns without parsing output.
from __future__ import annotations

import json
import os
import typing as t

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: record_results
type: aggregate
short_description: Record task results as JSON lines (test suite only)
description:
  - Appends one JSON object per task result to the file named by E(RECORD_RESULTS_FILE).
requirements:
  - E(RECORD_RESULTS_FILE) set
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "record_results"
    CALLBACK_NEEDS_ENABLED = True

    def _record(self, status: str, result: t.Any) -> None:
        path = os.environ.get("RECORD_RESULTS_FILE")
        if not path:
            return
        entry = {
            "status": status,
            "host": result._host.get_name(),
            "task": result._task.get_name(),
            "action": result._task.action,
            "result": self._strip(result._result),
        }
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, default=str) + "\n")

    @staticmethod
    def _strip(data: t.Any) -> t.Any:
        return json.loads(json.dumps(data, default=str))

    def v2_runner_on_ok(self, result: t.Any) -> None:
        self._record("ok", result)

    def v2_runner_on_failed(self, result: t.Any, ignore_errors: bool = False) -> None:
        self._record("ignored" if ignore_errors else "failed", result)

    def v2_runner_on_skipped(self, result: t.Any) -> None:
        self._record("skipped", result)

    def v2_runner_on_unreachable(self, result: t.Any) -> None:
        self._record("unreachable", result)
