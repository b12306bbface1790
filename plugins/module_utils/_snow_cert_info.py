# This file is internal to the snowrpa.robot_certs collection and may change in any release.
"""Read-only listing of CA records and user certificate mappings, with certificate facts, in batched requests."""

from __future__ import annotations

import typing as t

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _pki as pki,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _snow_certs as certs,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _snow_tables as tables,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._snow_client import (
    SnowClient,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._snow_user_cert import (
    MAPPING_FIELDS,
)

_CA_KINDS = {v: k for k, v in tables.CA_TYPES.items()}
_UNKNOWN = {"sha256_fingerprint": None, "thumbprint": None}


def _certificates(
    client: SnowClient, attachments: list[dict[str, t.Any]], fetch: bool
) -> list[t.Any]:
    found: list[t.Any] = []
    if fetch:
        for attachment in attachments:
            found += certs.parse_attachment(
                client.attachment_content(str(attachment["sys_id"]))
            )
    return found


def _base(
    record: dict[str, t.Any], attachments: list[dict[str, t.Any]]
) -> dict[str, t.Any]:
    return {
        "name": str(record.get("name") or ""),
        "sys_id": str(record.get("sys_id") or ""),
        "active": tables.as_bool(record.get("active")),
        "subject": str(record.get("subject") or ""),
        "issuer": str(record.get("issuer") or ""),
        "valid_from": str(record.get("valid_from") or ""),
        "valid_to": str(record.get("valid_to") or ""),
        "attachment_hash": str(attachments[0].get("hash") or "")
        if attachments
        else None,
    }


def _with_cert(view: dict[str, t.Any], found: list[t.Any]) -> dict[str, t.Any]:
    if found:
        view.update(
            sha256_fingerprint=pki.sha256_fingerprint(found[0]),
            thumbprint=pki.thumbprint(found[0]),
        )
    else:
        view.update(_UNKNOWN)
    return view


def run(
    params: dict[str, t.Any], client: SnowClient, check_mode: bool
) -> tuple[bool, dict[str, t.Any], dict[str, t.Any]]:
    fetch = bool(params.get("fetch_certificates", True))
    ca_names = params.get("ca_names") or []
    users = params.get("users") or []

    if ca_names:
        ca_rows = client.list_in(
            tables.CA_TABLE, "name", ca_names, fields=certs.CA_FIELDS
        )
    else:
        ca_rows = client.list_records(tables.CA_TABLE, fields=certs.CA_FIELDS)
    ca_attachments = (
        certs.group_attachments(
            client.list_attachments(tables.CA_TABLE, [r["sys_id"] for r in ca_rows])
        )
        if ca_rows
        else {}
    )
    cas: list[dict[str, t.Any]] = []
    ca_certs: list[tuple[str, list[t.Any]]] = []
    for row in ca_rows:
        attachments = ca_attachments.get(row["sys_id"], [])
        found = _certificates(client, attachments, fetch)
        view = _with_cert(_base(row, attachments), found)
        kind = str(row.get("type") or "")
        view.update(
            type=_CA_KINDS.get(kind, kind),
            publish_status=str(row.get("publish_status") or ""),
        )
        view["certificates"] = [certs.cert_facts(c) for c in found]
        cas.append(view)
        ca_certs.append((view["name"], found))

    if users:
        ids = [u for u in users if certs.is_sys_id(u)]
        names = [u for u in users if not certs.is_sys_id(u)]
        rows = (
            client.list_in(
                tables.USER_CERT_TABLE, "user.user_name", names, fields=MAPPING_FIELDS
            )
            if names
            else []
        )
        rows += (
            client.list_in(tables.USER_CERT_TABLE, "user", ids, fields=MAPPING_FIELDS)
            if ids
            else []
        )
        attachments_by = (
            certs.group_attachments(
                client.list_attachments(
                    tables.USER_CERT_TABLE, [r["sys_id"] for r in rows]
                )
            )
            if rows
            else {}
        )
    else:
        rows = client.list_records(tables.USER_CERT_TABLE, fields=MAPPING_FIELDS)
        every = client.list_records(
            tables.ATTACHMENT,
            query=tables.condition(
                tables.ATTACHMENT, "table_name", "=", tables.USER_CERT_TABLE
            ),
            fields=("sys_id", "file_name", "table_name", "table_sys_id", "hash"),
            path="/api/now/attachment",
        )
        attachments_by = certs.group_attachments(every) if rows else {}

    mappings: list[dict[str, t.Any]] = []
    seen: set[str] = set()
    for row in rows:
        if row["sys_id"] in seen:
            continue
        seen.add(row["sys_id"])
        attachments = attachments_by.get(row["sys_id"], [])
        found = _certificates(client, attachments, fetch)
        view = _with_cert(_base(row, attachments), found)
        view.update(
            type=str(row.get("type") or ""),
            user_name=str(row.get("user.user_name") or ""),
            user_sys_id=tables.ref_value(row.get("user")),
            ca_name=_ca_of(found, view["issuer"], ca_rows, ca_certs),
        )
        if ca_names and view["ca_name"] not in ca_names:
            continue
        mappings.append(view)
    return False, {"cas": cas, "mappings": mappings}, {}


def _ca_of(
    found: list[t.Any],
    issuer: str,
    ca_rows: list[dict[str, t.Any]],
    ca_certs: list[tuple[str, list[t.Any]]],
) -> str | None:
    """The name of the CA record that issued the mapping's certificate: by signature when known, else by issuer name."""
    if found:
        for name, issuers in ca_certs:
            if any(pki.is_issued_by(found[0], c) for c in issuers):
                return name
    for row in ca_rows:
        if issuer and str(row.get("subject") or "") == issuer:
            return str(row.get("name") or "")
    return None


__all__ = ("run",)
