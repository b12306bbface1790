"""Request and module-run counts for bench/results.md (filled in below)."""

from __future__ import annotations


def servicenow_section(sizes: list[int]) -> list[str]:
    return ["## ServiceNow requests", "", "not measured yet", ""]


def windows_section() -> list[str]:
    return ["## Windows module runs and file transfers", "", "not measured yet", ""]
