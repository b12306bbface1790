# This file is internal to the snowrpa.robot_certs collection and may change in any release.
"""Read-only pre-flight of an instance for certificate-based (mutual TLS) robot login."""

from __future__ import annotations

import typing as t

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _snow_plugin as plugin,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _snow_property as prop,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _snow_tables as tables,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._snow_client import (
    ServiceNowRequestError,
    SnowClient,
)

PROPERTIES = (
    tables.PROP_MUTUAL_ENABLED,
    tables.PROP_WEBSOCKET,
    tables.PROP_RPA_AUTH,
    tables.PROP_CODE_SIGNING,
)
ADC_SERVER = "snow_adc"
MODES = ("full", "auto")
# Facts that only the full checks read; in auto mode on an instance already set up they are None.
_FULL_ONLY_FACTS = (
    "adcv2",
    "supports_tls",
    "certificate_tables",
    "schema_mismatches",
    "roles",
    "has_admin",
    "has_sso_config_admin",
    "properties",
)


def _read(problems: list[str], what: str, call: t.Callable[[], t.Any]) -> t.Any:
    """CALL's answer, or None with a problem noted; a 401 stops the pre-flight, since nothing else can be read."""
    try:
        return call()
    except ServiceNowRequestError as exc:
        if exc.status == 401 or exc.status is None:
            raise
        problems.append(f"could not read {what}: {exc}")
        return None


def schema_mismatches(client: SnowClient) -> list[str]:
    """Inferred columns and choice values (_snow_tables) that the instance's dictionary does not have."""
    cert_tables = (tables.CA_TABLE, tables.USER_CERT_TABLE)
    columns = client.list_in(
        tables.SYS_DICTIONARY, "name", cert_tables, fields=("name", "element")
    )
    choices = client.list_in(
        tables.SYS_CHOICE, "name", cert_tables, fields=("name", "element", "value")
    )
    have_columns = {(str(r.get("name")), str(r.get("element"))) for r in columns}
    have_choices = {
        (str(r.get("name")), str(r.get("element")), str(r.get("value")))
        for r in choices
    }
    found = []
    for table in cert_tables:
        for column in tables.COLUMNS[table]:
            if (table, column) not in have_columns:
                found.append(f"{table} has no column {column!r}")
    for (table, column), values in tables.CHOICES_USED.items():
        for value in values:
            if (table, column, value) not in have_choices:
                found.append(f"{table}.{column} has no choice value {value!r}")
    return found


def run(
    params: dict[str, t.Any], client: SnowClient, check_mode: bool
) -> tuple[bool, dict[str, t.Any], dict[str, t.Any]]:
    problems: list[str] = []
    facts: dict[str, t.Any] = {"host": client.host}

    plugin_id = params.get("plugin_id") or tables.MUTUAL_AUTH_PLUGIN
    state = _read(
        problems,
        f"the state of plugin {plugin_id}",
        lambda: plugin.plugin_state(client, plugin_id),
    )
    facts["server_header"] = client.last_headers.get("server", "")
    facts["plugin"] = state or {"id": plugin_id, "name": "", "active": False}
    if state is None:
        problems.append(
            f"plugin {plugin_id} is not known to the instance; mutual TLS login needs it"
        )
    elif not state["active"]:
        problems.append(
            f"plugin {plugin_id} is not active; activate it with snowrpa.robot_certs.snow_plugin"
        )
    elif params.get("mode") == "auto":
        # An active plugin means the instance was set up and its certificate logins run: that set-up
        # has proven what the full checks would read, so one request is enough.
        facts.update(dict.fromkeys(_FULL_ONLY_FACTS))
        facts.update(user=client.username or "", checked="plugin", ready=True)
        return False, {"facts": facts, "problems": problems}, {}
    facts["checked"] = "full"

    try:
        answer = client.get("/adcv2/supports_tls")
        facts["supports_tls"] = (
            answer.body.decode("utf-8", "replace").strip().strip('"').lower() == "true"
        )
        facts["server_header"] = answer.headers.get("server", facts["server_header"])
    except ServiceNowRequestError as exc:
        if exc.status is None or exc.status == 401:
            raise
        facts["supports_tls"] = False
    facts["adcv2"] = ADC_SERVER in facts["server_header"].lower()
    if not facts["adcv2"]:
        problems.append(
            f"the instance's responses do not carry 'Server: {ADC_SERVER}', so it is not behind the ADCv2 load balancer that "
            "mutual TLS login needs (not available on-premises or with Edge Encryption)"
        )
    if not facts["supports_tls"]:
        problems.append(
            "GET /adcv2/supports_tls did not answer true: the instance cannot accept client certificates"
        )

    tables_rows = _read(
        problems,
        "sys_db_object",
        lambda: client.list_records(
            tables.SYS_DB_OBJECT,
            query=tables.condition(tables.SYS_DB_OBJECT, "name", "=", tables.CA_TABLE),
            fields=("name",),
        ),
    )
    facts["certificate_tables"] = bool(tables_rows)
    facts["schema_mismatches"] = []
    if tables_rows:
        mismatches = _read(
            problems, "sys_dictionary and sys_choice", lambda: schema_mismatches(client)
        )
        facts["schema_mismatches"] = mismatches or []
        problems += [
            f"{m}; the collection relies on it [infer], so change plugins/module_utils/_snow_tables.py to the instance's name"
            for m in facts["schema_mismatches"]
        ]

    facts["user"] = client.username or ""
    roles: list[str] | None = None
    if client.username:
        rows = _read(
            problems,
            "the calling user's roles",
            lambda: client.list_records(
                tables.SYS_USER_HAS_ROLE,
                query=tables.condition(
                    tables.SYS_USER_HAS_ROLE, "user.user_name", "=", client.username
                ),
                fields=("role.name",),
            ),
        )
        roles = (
            None
            if rows is None
            else sorted({str(r.get("role.name") or "") for r in rows} - {""})
        )
    facts["roles"] = roles
    for role in (tables.ROLE_ADMIN, tables.ROLE_SSO_CONFIG_ADMIN):
        has = None if roles is None else role in roles
        facts[f"has_{role}"] = has
        if has is False:
            problems.append(
                f"user {client.username} lacks role {role}; the certificate tables need both {tables.ROLE_ADMIN} and {tables.ROLE_SSO_CONFIG_ADMIN}"
            )
    if roles is None and not client.username:
        problems.append(
            "the calling user's roles are unknown (OAuth client credentials or API key); make sure it has admin and sso_config_admin"
        )

    records = (
        _read(
            problems,
            "the system properties",
            lambda: prop.read_properties(client, PROPERTIES),
        )
        or {}
    )
    facts["properties"] = {
        name: (str(records[name].get("value") or "") if name in records else None)
        for name in PROPERTIES
    }
    values = facts["properties"]
    for name in PROPERTIES:
        value = values[name]
        if (
            value is not None
            and prop.is_boolean(records.get(name))
            and value not in ("true", "false")
        ):
            # Code that compares with "true" reads anything else, "True" included, as false.
            problems.append(
                f"{name} is {value!r}, not the canonical true or false of a boolean property; set it with snow_property"
            )
    if (values[tables.PROP_MUTUAL_ENABLED] or "").strip().lower() == "false":
        problems.append(
            f"{tables.PROP_MUTUAL_ENABLED} is false: the instance refuses certificate logins; set it to true with snow_property"
        )
    if (values[tables.PROP_WEBSOCKET] or "").strip().lower() == "false":
        problems.append(
            f"{tables.PROP_WEBSOCKET} is false: robots need web sockets; set it to true with snow_property"
        )
    if values[tables.PROP_RPA_AUTH] is None:
        problems.append(
            f"{tables.PROP_RPA_AUTH} does not exist: is RPA Hub installed on the instance?"
        )
    elif values[tables.PROP_RPA_AUTH].lower() != "mtls":
        problems.append(
            f"{tables.PROP_RPA_AUTH} is {values[tables.PROP_RPA_AUTH]!r}: robots log in with mTLS only once it is mTLS"
        )

    facts["ready"] = not problems
    return False, {"facts": facts, "problems": problems}, {}


__all__ = ("ADC_SERVER", "MODES", "PROPERTIES", "run", "schema_mismatches")
