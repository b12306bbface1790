# This file is internal to the snowrpa.robot_certs collection and may change in any release.
"""System properties (sys_properties): read in one request, compare, set or create only those that differ."""

from __future__ import annotations

import typing as t

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _snow_tables as tables,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    RobotCertsError,
    ServiceNowError,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._snow_client import (
    SnowClient,
)

PROPERTY_FIELDS = ("sys_id", "name", "value", "type", "description")
_SECRET_TYPES = ("password", "password2")
# A boolean property's type is "true|false" on an instance; "boolean" is accepted as a synonym.
BOOLEAN_TYPES = ("true|false", "boolean")
_TRUE_WORDS = ("true", "yes", "on", "1")
_FALSE_WORDS = ("false", "no", "off", "0")
CODE_SIGNING_WARNING = (
    f"turning on {tables.PROP_CODE_SIGNING} makes robots refuse every published package that is not signed; "
    "republish the packages signed with the code-signing certificate"
)


def normalise(value: t.Any) -> str:
    """The string the instance stores: booleans as true/false, everything else as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def canonical_bool(name: str, value: t.Any) -> str:
    """VALUE of the boolean property NAME as the instance's canonical "true" or "false"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = "" if value is None else str(value).strip().lower()
    if text in _TRUE_WORDS:
        return "true"
    if text in _FALSE_WORDS:
        return "false"
    raise ServiceNowError(
        f"property {name} is a boolean (true|false) property: {value!r} is neither true nor false; give true or false"
    )


def is_boolean(record: dict[str, t.Any] | None) -> bool:
    return str((record or {}).get("type") or "").strip().lower() in BOOLEAN_TYPES


def read_properties(
    client: SnowClient, names: t.Iterable[str]
) -> dict[str, dict[str, t.Any]]:
    """name -> record of the properties that exist, in one request."""
    rows = client.list_in(
        tables.SYS_PROPERTIES, "name", list(names), fields=PROPERTY_FIELDS
    )
    return {str(r["name"]): r for r in rows}


class _Plan(t.NamedTuple):
    """One property: what the instance holds and what it should hold."""

    name: str
    record: dict[str, t.Any] | None
    current: str | None
    value: str
    kind: str
    params: dict[str, t.Any]

    @property
    def changes(self) -> bool:
        return self.current != self.value

    def shown(self, value: str | None) -> str | None:
        # Secret values never leave the module, not even in the diff.
        if self.kind in _SECRET_TYPES and value is not None:
            return "********"
        return value

    def view(self, sys_id: str) -> dict[str, t.Any]:
        return {
            "name": self.name,
            "value": self.shown(self.value),
            "type": self.kind,
            "sys_id": sys_id,
        }


def _items(params: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """The properties asked for, each with its own create, type and description (or the module's)."""
    defaults = {k: params.get(k) for k in ("create", "type", "description")}
    given = params.get("properties")
    if given is None:
        return [dict(defaults, name=params["name"], value=params["value"])]
    if not given:
        raise ServiceNowError("properties is empty; give at least one name and value")
    items: list[dict[str, t.Any]] = []
    seen: set[str] = set()
    for index, item in enumerate(given):
        name = str(item.get("name") or "").strip()
        if not name:
            raise ServiceNowError(
                f"properties[{index}] has no name; give the property's name"
            )
        if name in seen:
            raise ServiceNowError(
                f"properties names {name} twice; give each property once"
            )
        seen.add(name)
        merged = {k: defaults[k] if item.get(k) is None else item[k] for k in defaults}
        items.append(dict(merged, name=name, value=item.get("value")))
    return items


def _plan(item: dict[str, t.Any], record: dict[str, t.Any] | None) -> _Plan:
    """Compare one property with its record; refuse, before any write, what cannot be done."""
    name = item["name"]
    if record is None and not item.get("create"):
        # A misspelt name would otherwise become a new property that nothing reads.
        raise ServiceNowError(
            f"property {name} does not exist on the instance; check the name, or set create: true to create it"
        )
    current = None if record is None else str(record.get("value") or "")
    kind = str((record or {}).get("type") or item.get("type") or "string")
    if kind.strip().lower() in BOOLEAN_TYPES:
        value = canonical_bool(name, item["value"])
    else:
        value = normalise(item["value"])
    return _Plan(name, record, current, value, kind, item)


def _write(client: SnowClient, plan: _Plan) -> str:
    """Set or create the property of PLAN; return its sys_id."""
    if plan.record is None:
        fields = {"name": plan.name, "value": plan.value, "type": plan.kind}
        if plan.params.get("description"):
            fields["description"] = plan.params["description"]
        return str(client.create(tables.SYS_PROPERTIES, fields).get("sys_id") or "")
    sys_id = str(plan.record["sys_id"])
    client.update(tables.SYS_PROPERTIES, sys_id, {"value": plan.value})
    return sys_id


def _undo(client: SnowClient, written: list[tuple[_Plan, str]]) -> list[str]:
    """Put back what this run wrote (newest first); return what could not be put back."""
    problems: list[str] = []
    for plan, sys_id in reversed(written):
        try:
            if plan.record is None:
                client.delete(tables.SYS_PROPERTIES, sys_id)
            else:
                client.update(
                    tables.SYS_PROPERTIES, sys_id, {"value": plan.current or ""}
                )
        except RobotCertsError as exc:
            problems.append(str(exc))
    return problems


def ensure(
    client: SnowClient, items: list[dict[str, t.Any]]
) -> tuple[list[tuple[_Plan, str]], list[str]]:
    """Read every property in one request, check them all, then write only those that differ.

    Returns each plan with its record's sys_id, and the warnings. When a write fails, the
    properties this run had already written are set back, so the instance is as before.
    """
    records = read_properties(client, [item["name"] for item in items])
    plans = [_plan(item, records.get(item["name"])) for item in items]

    warnings = [
        CODE_SIGNING_WARNING
        for p in plans
        if p.changes and p.name == tables.PROP_CODE_SIGNING and p.value == "true"
    ]
    done: list[tuple[_Plan, str]] = []
    written: list[tuple[_Plan, str]] = []
    try:
        for plan in plans:
            if plan.changes:
                written.append((plan, _write(client, plan)))
                done.append(written[-1])
            else:
                done.append((plan, str((plan.record or {}).get("sys_id") or "")))
    except ServiceNowError as exc:
        problems = _undo(client, written)
        message = str(exc)
        if problems:
            message += (
                "; setting back the properties this run had written also failed: "
                + " | ".join(problems)
            )
        elif written:
            message += "; the properties this run had written were set back, so nothing is left half-written"
        raise ServiceNowError(message) from None
    return done, warnings


def run(
    params: dict[str, t.Any], client: SnowClient, check_mode: bool
) -> tuple[bool, dict[str, t.Any], dict[str, t.Any]]:
    """Ensure each property has its value; a missing property is created only with create."""
    done, warnings = ensure(client, _items(params))
    changed = any(plan.changes for plan, _sys_id in done)

    if params.get("properties") is None:
        plan, sys_id = done[0]
        after = {"name": plan.name, "value": plan.shown(plan.value)}
        before = (
            {"name": plan.name, "value": plan.shown(plan.current)}
            if plan.record
            else {}
        )
        result = {
            "property": plan.view(sys_id),
            "previous_value": plan.shown(plan.current),
            "warnings": warnings,
        }
        return changed, result, {"before": before if changed else after, "after": after}

    views = [
        dict(
            plan.view(sys_id),
            previous_value=plan.shown(plan.current),
            changed=plan.changes,
        )
        for plan, sys_id in done
    ]
    # Only what changes goes into the diff, so one property set among many reads as one.
    diff = {
        "before": {
            p.name: p.shown(p.current)
            for p, _sys_id in done
            if p.changes and p.record is not None
        },
        "after": {p.name: p.shown(p.value) for p, _sys_id in done if p.changes},
    }
    return changed, {"properties": views, "warnings": warnings}, diff


__all__ = (
    "BOOLEAN_TYPES",
    "CODE_SIGNING_WARNING",
    "canonical_bool",
    "ensure",
    "is_boolean",
    "PROPERTY_FIELDS",
    "normalise",
    "read_properties",
    "run",
)
