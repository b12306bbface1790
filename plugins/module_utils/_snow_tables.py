# This file is internal to the snowrpa.robot_certs collection and may change in any release.
"""The ServiceNow tables, columns and choice values the collection relies on, in one place.

Column names and choice values marked [infer] in docs/servicenow-api.md ("Tables") are not
documented by ServiceNow; when a real instance differs, this is
the one file to change. Query conditions are built here so that every field name is checked
before a request is sent: an instance silently ignores a condition on an unknown field, which
would turn a narrow look-up into a listing of the whole table.
"""

from __future__ import annotations

import typing as t

from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    ServiceNowError,
)

# Tables (sys_ca_certificate and sys_user_certificate exist once com.glide.auth.mutual is active).
SYS_USER = "sys_user"
SYS_USER_HAS_ROLE = "sys_user_has_role"
SYS_USER_ROLE = "sys_user_role"
SYS_PROPERTIES = "sys_properties"
SYS_DB_OBJECT = "sys_db_object"
V_PLUGIN = "v_plugin"
CA_TABLE = "sys_ca_certificate"
USER_CERT_TABLE = "sys_user_certificate"
ATTACHMENT = "sys_attachment"
SYS_DICTIONARY = "sys_dictionary"
SYS_CHOICE = "sys_choice"

# Columns per table; a value is the referenced table for reference columns, else None.
COLUMNS: dict[str, dict[str, str | None]] = {
    SYS_USER: {"sys_id": None, "user_name": None, "name": None, "active": None},
    SYS_USER_ROLE: {"sys_id": None, "name": None},
    SYS_USER_HAS_ROLE: {"sys_id": None, "user": SYS_USER, "role": SYS_USER_ROLE},
    SYS_PROPERTIES: {
        "sys_id": None,
        "name": None,
        "value": None,
        "type": None,
        "description": None,
    },
    SYS_DB_OBJECT: {"sys_id": None, "name": None},
    V_PLUGIN: {"sys_id": None, "id": None, "name": None, "active": None},
    CA_TABLE: {
        "sys_id": None,
        "name": None,
        "active": None,
        "type": None,
        "format": None,
        "expiration_notification": None,
        "warn_in_days": None,
        "notify_users": None,
        "publish_status": None,
        "subject": None,
        "issuer": None,
        "valid_from": None,
        "valid_to": None,
        "sys_created_on": None,
        "sys_updated_on": None,
    },
    USER_CERT_TABLE: {
        "sys_id": None,
        "name": None,
        "user": SYS_USER,
        "active": None,
        "type": None,
        "subject": None,
        "issuer": None,
        "valid_from": None,
        "valid_to": None,
        "sys_created_on": None,
        "sys_updated_on": None,
    },
    SYS_DICTIONARY: {
        "sys_id": None,
        "name": None,
        "element": None,
        "internal_type": None,
    },
    SYS_CHOICE: {
        "sys_id": None,
        "name": None,
        "element": None,
        "value": None,
        "label": None,
    },
    ATTACHMENT: {
        "sys_id": None,
        "file_name": None,
        "table_name": None,
        "table_sys_id": None,
        "content_type": None,
        "size_bytes": None,
        "hash": None,
    },
}

# Choice values [infer].
CA_TYPES = {"ca": "ca_cert", "intermediate": "intermediate_cert"}
CA_FORMAT_PEM = "pem"
PUBLISH_EXISTS = "exists"
PUBLISH_PENDING = "pending"
PUBLISH_FAILED = "failed"
USER_CERT_TYPE = "client_cert"
PLUGIN_ACTIVE = "active"

# The stored choice values the modules write or read, per (table, column), checked against sys_choice.
CHOICES_USED: dict[tuple[str, str], tuple[str, ...]] = {
    (CA_TABLE, "type"): tuple(CA_TYPES.values()),
    (CA_TABLE, "format"): (CA_FORMAT_PEM,),
    (CA_TABLE, "publish_status"): (PUBLISH_PENDING, PUBLISH_EXISTS, PUBLISH_FAILED),
    (USER_CERT_TABLE, "type"): (USER_CERT_TYPE,),
}

# Roles, the plugin and the properties that certificate-based login of robots depends on.
ROLE_ADMIN = "admin"
ROLE_SSO_CONFIG_ADMIN = "sso_config_admin"
MUTUAL_AUTH_PLUGIN = "com.glide.auth.mutual"
PROP_MUTUAL_ENABLED = "glide.authenticate.mutual.enabled"
PROP_WEBSOCKET = "glide.cometd.websocket.enabled"
PROP_RPA_AUTH = "sn_rpa_fdn.instance_authentication"
PROP_CODE_SIGNING = "sn_rpa_fdn.code_signing_required"

# The [infer] facts, worded for the modules' notes and for error messages.
INFERRED_FACTS = (
    f"Column names of {CA_TABLE}: name, active, type, format, expiration_notification, warn_in_days, "
    "notify_users, publish_status, subject, issuer, valid_from, valid_to [infer].",
    f"Column names of {USER_CERT_TABLE}: name, user, active, type, subject, issuer, valid_from, valid_to [infer].",
    f"Choice values: {CA_TABLE}.type ca_cert or intermediate_cert, format pem, publish_status pending, exists "
    f"or failed; {USER_CERT_TABLE}.type client_cert; v_plugin.active active or inactive [infer].",
    "The attachment hash is the SHA-256 of the attached bytes [infer].",
)

_OPERATORS = ("=", "!=", "IN", "NOT IN", "STARTSWITH", "LIKE", "ISEMPTY", "ISNOTEMPTY")


def check_field(table: str, field: str) -> None:
    """Raise ServiceNowError unless FIELD (optionally one dot-walk deep) is a known column."""
    columns = COLUMNS.get(table)
    if columns is None:
        raise ServiceNowError(
            f"table {table!r} is not one this collection knows; known: {', '.join(sorted(COLUMNS))}"
        )
    head, _dot, tail = field.partition(".")
    if head not in columns:
        raise ServiceNowError(
            f"field {field!r} is not a known column of {table}; known: {', '.join(sorted(columns))}"
        )
    if tail:
        target = columns[head]
        if target is None:
            raise ServiceNowError(
                f"field {field!r}: {table}.{head} is not a reference, so it cannot be dot-walked"
            )
        if "." in tail or tail not in COLUMNS[target]:
            raise ServiceNowError(
                f"field {field!r}: {tail!r} is not a known column of {target}"
            )


def check_fields(table: str, fields: t.Iterable[str]) -> list[str]:
    """Check every field name and return them as a list."""
    names = list(fields)
    for name in names:
        check_field(table, name)
    return names


def _check_value(value: str, *, in_list: bool) -> str:
    text = str(value)
    # '^' separates conditions and ',' separates IN items; either would change the query's meaning.
    if "^" in text or (in_list and "," in text) or "\n" in text:
        raise ServiceNowError(
            f"value {text!r} cannot be used in a ServiceNow query: it contains '^', ',' or a line break"
        )
    return text


def condition(table: str, field: str, operator: str, value: t.Any = None) -> str:
    """One encoded-query condition with a checked field name."""
    check_field(table, field)
    if operator not in _OPERATORS:
        raise ServiceNowError(f"query operator {operator!r} is not supported")
    if operator in ("ISEMPTY", "ISNOTEMPTY"):
        return f"{field}{operator}"
    if operator in ("IN", "NOT IN"):
        items = [_check_value(v, in_list=True) for v in value]
        return f"{field}{operator}{','.join(items)}"
    return f"{field}{operator}{_check_value(value, in_list=False)}"


def join_and(*conditions: str) -> str:
    return "^".join(c for c in conditions if c)


def join_or(*conditions: str) -> str:
    return "^OR".join(c for c in conditions if c)


def chunk_values(values: t.Iterable[str], max_chars: int) -> list[list[str]]:
    """Split VALUES (de-duplicated, order kept) into lists whose comma-joined length stays under MAX_CHARS."""
    chunks: list[list[str]] = []
    current: list[str] = []
    size = 0
    seen: set[str] = set()
    for value in values:
        if value in seen:
            continue
        seen.add(value)
        if current and size + len(value) + 1 > max_chars:
            chunks.append(current)
            current, size = [], 0
        current.append(value)
        size += len(value) + 1
    if current:
        chunks.append(current)
    return chunks


def as_bool(value: t.Any) -> bool:
    """A ServiceNow boolean (always a string on the wire) as a Python bool."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes")


def ref_value(value: t.Any) -> str:
    """The sys_id of a reference field, whether or not the instance sent the link form."""
    if isinstance(value, dict):
        return str(value.get("value", ""))
    return "" if value is None else str(value)


__all__ = (
    "SYS_USER",
    "SYS_USER_HAS_ROLE",
    "SYS_USER_ROLE",
    "SYS_PROPERTIES",
    "SYS_DB_OBJECT",
    "V_PLUGIN",
    "CA_TABLE",
    "USER_CERT_TABLE",
    "ATTACHMENT",
    "SYS_DICTIONARY",
    "SYS_CHOICE",
    "CHOICES_USED",
    "COLUMNS",
    "CA_TYPES",
    "CA_FORMAT_PEM",
    "PUBLISH_EXISTS",
    "PUBLISH_PENDING",
    "PUBLISH_FAILED",
    "USER_CERT_TYPE",
    "PLUGIN_ACTIVE",
    "ROLE_ADMIN",
    "ROLE_SSO_CONFIG_ADMIN",
    "MUTUAL_AUTH_PLUGIN",
    "PROP_MUTUAL_ENABLED",
    "PROP_WEBSOCKET",
    "PROP_RPA_AUTH",
    "PROP_CODE_SIGNING",
    "INFERRED_FACTS",
    "check_field",
    "check_fields",
    "condition",
    "join_and",
    "join_or",
    "chunk_values",
    "as_bool",
    "ref_value",
)
