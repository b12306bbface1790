# This file is internal to the snowrpa.robot_certs collection and may change in any release.
"""Plugin activation through the CI/CD API, polled until the progress record says it is done."""

from __future__ import annotations

import time
import typing as t

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _snow_tables as tables,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    ServiceNowError,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._snow_client import (
    SnowClient,
)

# CI/CD progress status values [doc]: 0 pending, 1 running, 2 successful, 3 failed, 4 cancelled.
PROGRESS_LABELS = {
    "0": "pending",
    "1": "running",
    "2": "successful",
    "3": "failed",
    "4": "cancelled",
}
_DONE, _FAILED = "2", ("3", "4")


def plugin_state(client: SnowClient, plugin_id: str) -> dict[str, t.Any] | None:
    """The v_plugin row of PLUGIN_ID with active as a bool, or None when the instance has no such plugin."""
    rows = client.list_records(
        tables.V_PLUGIN,
        query=tables.condition(tables.V_PLUGIN, "id", "=", plugin_id),
        fields=("id", "name", "active"),
    )
    if not rows:
        return None
    row = rows[0]
    return {
        "id": str(row.get("id", plugin_id)),
        "name": str(row.get("name", "")),
        "active": str(row.get("active")) == tables.PLUGIN_ACTIVE,
    }


def _progress_text(progress: dict[str, t.Any]) -> str:
    parts = [
        str(progress.get(k) or "").strip()
        for k in ("status_message", "status_detail", "error")
    ]
    return (
        "; ".join(p for i, p in enumerate(parts) if p and p not in parts[:i])
        or "no detail given"
    )


def wait_progress(
    client: SnowClient, progress_id: str, *, what: str, timeout: float, interval: float
) -> dict[str, t.Any]:
    """Poll /api/sn_cicd/progress/{id} until successful; fail with the record's own text otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        progress = client.get_json(f"/api/sn_cicd/progress/{progress_id}")
        if not isinstance(progress, dict):
            raise ServiceNowError(
                f"GET /api/sn_cicd/progress/{progress_id} answered without a progress record"
            )
        status = str(progress.get("status", ""))
        if status == _DONE:
            return progress
        if status in _FAILED:
            raise ServiceNowError(
                f"{what} {PROGRESS_LABELS[status]}: {_progress_text(progress)}"
            )
        if time.monotonic() >= deadline:
            percent = progress.get("percent_complete")
            raise ServiceNowError(
                f"{what} still {PROGRESS_LABELS.get(status, status or 'unknown')} after {timeout:g} s"
                f"{f' ({percent}% complete)' if percent not in (None, '') else ''}; raise timeout, or check progress {progress_id} on the instance"
            )
        client.sleep(interval)


def run(
    params: dict[str, t.Any], client: SnowClient, check_mode: bool
) -> tuple[bool, dict[str, t.Any], dict[str, t.Any]]:
    """Ensure the plugin PARAMS['plugin_id'] is active."""
    plugin_id = params["plugin_id"]
    state = plugin_state(client, plugin_id)
    if state is None:
        raise ServiceNowError(
            f"plugin {plugin_id!r} is not known to the instance (no v_plugin row); check the plugin id"
        )
    diff = {
        "before": {"id": plugin_id, "active": state["active"]},
        "after": {"id": plugin_id, "active": True},
    }
    if state["active"]:
        return False, {"plugin": state, "progress": None}, diff
    answer = client.post(f"/api/sn_cicd/plugin/{plugin_id}/activate", placeholder={})
    if check_mode:
        return True, {"plugin": dict(state, active=True), "progress": None}, diff
    try:
        progress_id = str(answer["links"]["progress"]["id"])
    except (KeyError, TypeError) as exc:
        raise ServiceNowError(
            f"POST /api/sn_cicd/plugin/{plugin_id}/activate answered without links.progress.id"
        ) from exc
    progress = wait_progress(
        client,
        progress_id,
        what=f"activation of plugin {plugin_id}",
        timeout=params["timeout"],
        interval=params["poll_interval"],
    )
    progress_view = {
        k: progress.get(k)
        for k in ("status", "status_label", "status_message", "percent_complete")
    }
    progress_view["id"] = progress_id
    return True, {"plugin": dict(state, active=True), "progress": progress_view}, diff


__all__ = ("PROGRESS_LABELS", "plugin_state", "run", "wait_progress")
