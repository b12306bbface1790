"""Tables, columns and choice values the ServiceNow test double knows.

Test code only. Column names and choice values of the certificate tables are inferred (see
docs/servicenow-api.md, "Tables"); they are defined here once, as the collection defines them
once in plugins/module_utils/_snow_tables.py.
"""

from __future__ import annotations

STRING = "string"
BOOLEAN = "boolean"
INTEGER = "integer"
PASSWORD = "password2"
DATETIME = "glide_date_time"
CHOICE = "choice"

SYSTEM_FIELDS: dict[str, str] = {
    "sys_id": "GUID",
    "sys_created_on": DATETIME,
    "sys_created_by": STRING,
    "sys_updated_on": DATETIME,
    "sys_updated_by": STRING,
    "sys_mod_count": INTEGER,
}


def ref(table: str) -> str:
    return f"reference:{table}"


CERT_FIELDS = {
    "subject": STRING,
    "issuer": STRING,
    "valid_from": DATETIME,
    "valid_to": DATETIME,
}

TABLES: dict[str, dict[str, str]] = {
    "sys_user": {
        "user_name": STRING,
        "name": STRING,
        "first_name": STRING,
        "last_name": STRING,
        "email": STRING,
        "active": BOOLEAN,
        "user_password": PASSWORD,
    },
    "sys_user_role": {"name": STRING, "description": STRING},
    "sys_user_has_role": {
        "user": ref("sys_user"),
        "role": ref("sys_user_role"),
        "state": STRING,
    },
    "sys_properties": {
        "name": STRING,
        "value": STRING,
        "type": STRING,
        "description": STRING,
    },
    "sys_db_object": {"name": STRING, "label": STRING},
    "sys_dictionary": {"name": STRING, "element": STRING, "internal_type": STRING},
    "sys_choice": {"name": STRING, "element": STRING, "value": STRING, "label": STRING},
    "v_plugin": {"id": STRING, "name": STRING, "active": STRING, "version": STRING},
    "sys_attachment": {
        "file_name": STRING,
        "table_name": STRING,
        "table_sys_id": STRING,
        "content_type": STRING,
        "size_bytes": INTEGER,
        "hash": STRING,
    },
    "sys_ca_certificate": {
        "name": STRING,
        "active": BOOLEAN,
        "type": CHOICE,
        "format": CHOICE,
        "expiration_notification": BOOLEAN,
        "warn_in_days": INTEGER,
        "notify_users": STRING,
        "publish_status": CHOICE,
        **CERT_FIELDS,
    },
    "sys_user_certificate": {
        "name": STRING,
        "user": ref("sys_user"),
        "active": BOOLEAN,
        "type": CHOICE,
        **CERT_FIELDS,
    },
    "sys_ca_certificate_api_track": {"name": STRING},
}

# The field whose value stands for a record where a display value is asked for.
DISPLAY_FIELD = {
    "sys_user": "name",
    "sys_user_role": "name",
    "sys_properties": "name",
    "sys_db_object": "name",
    "v_plugin": "name",
    "sys_attachment": "file_name",
    "sys_ca_certificate": "name",
    "sys_user_certificate": "name",
}

UNIQUE_FIELD = {
    "sys_user": "user_name",
    "sys_user_role": "name",
    "sys_properties": "name",
    "sys_db_object": "name",
}

CHOICES: dict[tuple[str, str], dict[str, str]] = {
    ("sys_ca_certificate", "type"): {
        "ca_cert": "CA Cert",
        "intermediate_cert": "Intermediate Cert",
    },
    ("sys_ca_certificate", "format"): {"pem": "PEM"},
    ("sys_ca_certificate", "publish_status"): {
        "pending": "Pending",
        "exists": "Exists",
        "failed": "Failed",
    },
    ("sys_user_certificate", "type"): {"client_cert": "Client Cert"},
}

DEFAULTS: dict[str, dict[str, str]] = {
    "sys_user": {"active": "true"},
    "sys_ca_certificate": {
        "active": "true",
        "type": "ca_cert",
        "format": "pem",
        "expiration_notification": "false",
        "warn_in_days": "30",
    },
    "sys_user_certificate": {"active": "true", "type": "client_cert"},
    "sys_user_has_role": {"state": "active"},
}

# Tables that exist from the start; the plugin adds CERT_TABLES when it is activated.
MUTUAL_AUTH_PLUGIN = "com.glide.auth.mutual"
CERT_TABLES = (
    "sys_ca_certificate",
    "sys_user_certificate",
    "sys_ca_certificate_api_track",
)
BASE_TABLES = tuple(t for t in TABLES if t not in CERT_TABLES)
# Tables whose rows need role sso_config_admin besides admin [doc].
SSO_TABLES = ("sys_ca_certificate", "sys_user_certificate")


def fields_of(table: str) -> dict[str, str]:
    return {**SYSTEM_FIELDS, **TABLES[table]}


def dictionary_rows(table: str) -> list[dict[str, str]]:
    """sys_dictionary and sys_choice rows that describe TABLE, as a real instance has."""
    rows = [
        {
            "_table": "sys_dictionary",
            "name": table,
            "element": field,
            "internal_type": kind.split(":")[0],
        }
        for field, kind in fields_of(table).items()
    ]
    for (owner, element), values in CHOICES.items():
        if owner == table:
            rows += [
                {
                    "_table": "sys_choice",
                    "name": table,
                    "element": element,
                    "value": v,
                    "label": label,
                }
                for v, label in values.items()
            ]
    return rows


__all__ = (
    "BASE_TABLES",
    "BOOLEAN",
    "CERT_TABLES",
    "CHOICES",
    "DEFAULTS",
    "DISPLAY_FIELD",
    "INTEGER",
    "MUTUAL_AUTH_PLUGIN",
    "PASSWORD",
    "SSO_TABLES",
    "TABLES",
    "UNIQUE_FIELD",
    "dictionary_rows",
    "fields_of",
    "ref",
)
