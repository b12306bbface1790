# This file is internal to the snowrpa.robot_certs collection and may change in any release.
"""System properties (sys_properties): read, compare, set or create."""

from __future__ import annotations

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


def run(
    params: dict[str, t.Any], client: SnowClient, check_mode: bool
) -> tuple[bool, dict[str, t.Any], dict[str, t.Any]]:
    """Ensure the property NAME has VALUE; a missing property is created only with CREATE."""
    name = params["name"]
    record = read_properties(client, [name]).get(name)
    if record is None and not params.get("create"):
        # A misspelt name would otherwise become a new property that nothing reads.
        raise ServiceNowError(
            f"property {name} does not exist on the instance; check the name, or set create: true to create it"
        )
    current = None if record is None else str(record.get("value") or "")
    kind = str((record or {}).get("type") or params.get("type") or "string")
    if kind.strip().lower() in BOOLEAN_TYPES:
        value = canonical_bool(name, params["value"])
    else:
        value = normalise(params["value"])
    secret = kind in _SECRET_TYPES
    result: dict[str, t.Any] = {"warnings": []}
    shown = (lambda v: None if v is None else "********") if secret else (lambda v: v)
    diff = {
        "before": {"name": name, "value": shown(current)} if record else {},
        "after": {"name": name, "value": shown(value)},
    }

    if current == value:
        result["property"] = {
            "name": name,
            "value": shown(value),
            "type": kind,
            "sys_id": str(record["sys_id"]) if record else "",
        }
        result["previous_value"] = shown(current)
        return False, result, {"before": diff["after"], "after": diff["after"]}

    if name == tables.PROP_CODE_SIGNING and value == "true":
        result["warnings"].append(CODE_SIGNING_WARNING)
    if record is None:
        fields = {"name": name, "value": value, "type": kind}
        if params.get("description"):
            fields["description"] = params["description"]
        record = client.create(tables.SYS_PROPERTIES, fields)
    else:
        client.update(tables.SYS_PROPERTIES, str(record["sys_id"]), {"value": value})
    result["property"] = {
        "name": name,
        "value": shown(value),
        "type": kind,
        "sys_id": str(record.get("sys_id") or ""),
    }
    result["previous_value"] = shown(current)
    return True, result, diff


__all__ = (
    "BOOLEAN_TYPES",
    "CODE_SIGNING_WARNING",
    "canonical_bool",
    "is_boolean",
    "PROPERTY_FIELDS",
    "normalise",
    "read_properties",
    "run",
)
