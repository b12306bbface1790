# This file is internal to the snowrpa.robot_certs collection and may change in any release.
"""CA records (sys_ca_certificate) and their attached PEM: shared certificate handling and snow_ca_register.

Records are compared by the SHA-256 ``hash`` of their attachment. The attached bytes are made
deterministically from the certificates (canonical PEM, base64 wrapped at 64 columns), so one
listing of attachment records tells whether an instance already holds a given certificate.
New records follow the order reported to work on instances (the attachment is what the instance
reads the certificate from, so it must exist before the record is inserted): attach the PEM to a
chosen sys_id, then insert the record with that sys_id; whatever this run created is deleted
again when a later step fails.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import time
import typing as t
import uuid

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _pki as pki,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _snow_tables as tables,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    CertificateError,
    RobotCertsError,
    ServiceNowError,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._snow_client import (
    ServiceNowRequestError,
    SnowClient,
)

PEM_CONTENT_TYPE = "application/x-pem-file"
CA_FIELDS = (
    "sys_id",
    "name",
    "active",
    "type",
    "format",
    "expiration_notification",
    "warn_in_days",
    "notify_users",
    "publish_status",
    "subject",
    "issuer",
    "valid_from",
    "valid_to",
)
_SYS_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_PRIVATE_KEY_RE = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")


def is_sys_id(value: str) -> bool:
    return bool(_SYS_ID_RE.match(value))


# PEM input ---------------------------------------------------------------------------------


class PemInput(t.NamedTuple):
    certs: list[t.Any]
    content: bytes
    digest: str
    source: str


def read_pem(path: str | None, content: str | None, *, source: str) -> PemInput:
    """The certificates of PEM_PATH or PEM_CONTENT as canonical PEM; refuses private keys."""
    if path:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise CertificateError(
                f"cannot read {source} {path}: {exc.strerror or exc}"
            ) from None
    elif content:
        data = content.encode("utf-8")
    else:
        raise CertificateError(f"{source}: give pem_path or pem_content")
    if _PRIVATE_KEY_RE.search(data):
        # Refused before any request: a key must never reach the instance.
        raise CertificateError(
            f"{source} holds a private key; give the certificate only (the key stays in the robot's PKCS#12)"
        )
    if b"-----BEGIN" not in data:
        raise CertificateError(
            f"{source} is not PEM text; give the PEM certificate (-----BEGIN CERTIFICATE-----)"
        )
    certs = pki.load_certificates(data, source=source)
    canonical = b"".join(pki.cert_pem(cert) for cert in certs)
    return PemInput(certs, canonical, hashlib.sha256(canonical).hexdigest(), source)


def leaf_only(pem: PemInput) -> PemInput:
    """PEM reduced to its first certificate, with content and digest of that certificate alone."""
    content = pki.cert_pem(pem.certs[0])
    return PemInput(
        pem.certs[:1], content, hashlib.sha256(content).hexdigest(), pem.source
    )


def cert_facts(cert: t.Any, digest: str | None = None) -> dict[str, t.Any]:
    """Public facts of a certificate for returns and diffs, with validity in the instance's own format."""
    summary = pki.cert_summary(cert)
    facts = {
        k: summary[k] for k in ("subject", "issuer", "sha256_fingerprint", "thumbprint")
    }
    facts["valid_from"] = _stamp(cert.not_valid_before_utc)
    facts["valid_to"] = _stamp(cert.not_valid_after_utc)
    if digest:
        facts["attachment_hash"] = digest
    return facts


def _stamp(moment: datetime.datetime) -> str:
    # The instance's own format for date-time values (YYYY-MM-DD HH:MM:SS, UTC).
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_attachment(content: bytes) -> list[t.Any]:
    """Certificates of a downloaded attachment, or an empty list when it holds none."""
    try:
        return pki.load_certificates(content, source="attachment")
    except CertificateError:
        return []


# Records with attachments --------------------------------------------------------------------


def group_attachments(
    attachments: list[dict[str, t.Any]],
) -> dict[str, list[dict[str, t.Any]]]:
    grouped: dict[str, list[dict[str, t.Any]]] = {}
    for attachment in attachments:
        grouped.setdefault(str(attachment.get("table_sys_id", "")), []).append(
            attachment
        )
    return grouped


def has_digest(attachments: list[dict[str, t.Any]], digest: str) -> bool:
    return any(str(a.get("hash", "")).lower() == digest for a in attachments)


class Undo:
    """Records this run created, deleted again (newest first) when a later step fails."""

    def __init__(self, client: SnowClient) -> None:
        self.client = client
        self.created: list[tuple[str, str]] = []

    def add(self, table: str, sys_id: str) -> None:
        self.created.append((table, sys_id))

    def run(self) -> list[str]:
        """Delete every created record and attachment; return what could not be cleaned up."""
        problems: list[str] = []
        for table, sys_id in reversed(self.created):
            try:
                delete_with_attachments(self.client, table, sys_id)
            except RobotCertsError as exc:
                problems.append(str(exc))
        self.created.clear()
        return problems


def fail_with_undo(undo: Undo, exc: RobotCertsError) -> t.NoReturn:
    wrote = bool(undo.created) and not undo.client.check_mode
    problems = undo.run()
    message = str(exc)
    if problems:
        message += "; cleaning up what this run created also failed: " + " | ".join(
            problems
        )
    elif wrote:
        message += "; the records and attachments this run had written were removed again, so nothing is left half-written"
    kind = CertificateError if isinstance(exc, CertificateError) else ServiceNowError
    raise kind(message) from None


def delete_with_attachments(client: SnowClient, table: str, sys_id: str) -> None:
    """Delete a record and every attachment pointing at it (a lost attachment of a retried POST included)."""
    try:
        client.delete(table, sys_id)
    except ServiceNowRequestError as exc:
        if exc.status != 404:
            raise
    if client.check_mode:
        return
    for attachment in client.list_attachments(table, [sys_id]):
        try:
            client.delete_attachment(str(attachment["sys_id"]))
        except ServiceNowRequestError as exc:
            if exc.status != 404:
                raise


def create_with_attachment(
    client: SnowClient,
    undo: Undo,
    table: str,
    fields: dict[str, t.Any],
    *,
    file_name: str,
    content: bytes,
) -> dict[str, t.Any]:
    """Attach CONTENT to a new sys_id, then insert the record with that sys_id."""
    sys_id = uuid.uuid4().hex
    undo.add(table, sys_id)
    client.attach(table, sys_id, file_name, content, PEM_CONTENT_TYPE)
    record = client.create(table, dict(fields, sys_id=sys_id))
    return dict(record, sys_id=str(record.get("sys_id") or sys_id))


def file_name_for(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "certificate"
    return f"{safe}.pem"


def check_current(pem: PemInput, *, what: str) -> None:
    for cert in pem.certs:
        try:
            pki.check_not_expired(
                cert, what=f"{what} {cert.subject.rfc4514_string()!r}"
            )
        except CertificateError as exc:
            raise CertificateError(f"{exc} (from {pem.source})") from None


# snow_ca_register -------------------------------------------------------------------------------


def _resolve_users(client: SnowClient, users: list[str]) -> list[str]:
    ids = [u for u in users if is_sys_id(u)]
    names = [u for u in users if not is_sys_id(u)]
    found: dict[str, str] = {}
    if names:
        for row in client.list_in(
            tables.SYS_USER, "user_name", names, fields=("sys_id", "user_name")
        ):
            found[str(row["user_name"])] = str(row["sys_id"])
    missing = [n for n in names if n not in found]
    if missing:
        raise ServiceNowError(
            f"notify_users: no sys_user named {', '.join(missing)}; give existing user names or sys_ids"
        )
    return ids + [found[n] for n in names]


def _ca_desired(params: dict[str, t.Any], client: SnowClient) -> dict[str, str]:
    desired = {
        "name": params["name"],
        "active": "true" if params["active"] else "false",
        "type": tables.CA_TYPES[params["type"]],
        "format": tables.CA_FORMAT_PEM,
    }
    if params.get("expiration_notification") is not None:
        desired["expiration_notification"] = (
            "true" if params["expiration_notification"] else "false"
        )
    if params.get("warn_in_days") is not None:
        desired["warn_in_days"] = str(params["warn_in_days"])
    if params.get("notify_users") is not None:
        desired["notify_users"] = ",".join(
            _resolve_users(client, params["notify_users"])
        )
    return desired


def _differs(field: str, want: str, have: t.Any) -> bool:
    have_text = tables.ref_value(have)
    if field == "notify_users":
        return set(filter(None, want.split(","))) != set(
            filter(None, have_text.split(","))
        )
    if field in ("active", "expiration_notification"):
        return tables.as_bool(want) != tables.as_bool(have_text)
    return want != have_text


def record_view(record: dict[str, t.Any], fields: t.Iterable[str]) -> dict[str, t.Any]:
    return {f: tables.ref_value(record.get(f)) for f in fields if f in record}


def wait_published(
    client: SnowClient, sys_id: str, *, name: str, timeout: float, interval: float
) -> dict[str, t.Any]:
    """Poll the CA record until its publish status is exists; fail on failed or after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    query = tables.condition(tables.CA_TABLE, "sys_id", "=", sys_id)
    while True:
        rows = client.list_records(tables.CA_TABLE, query=query, fields=CA_FIELDS)
        if not rows:
            raise ServiceNowError(
                f"CA record {name!r} ({sys_id}) disappeared while waiting for it to be published"
            )
        status = str(rows[0].get("publish_status") or "")
        if status == tables.PUBLISH_EXISTS:
            return rows[0]
        if status == tables.PUBLISH_FAILED:
            raise ServiceNowError(
                f"CA record {name!r}: the instance could not publish it (publish status {status!r}); check the PEM and the instance's log"
            )
        if time.monotonic() >= deadline:
            raise ServiceNowError(
                f"CA record {name!r} still has publish status {status or 'empty'!r} after {timeout:g} s; raise publish_timeout, "
                "or look in the instance's system log for why the certificate is not published, then run the task again"
            )
        client.sleep(interval)


def run_ca(
    params: dict[str, t.Any], client: SnowClient, check_mode: bool
) -> tuple[bool, dict[str, t.Any], dict[str, t.Any]]:
    """Ensure the CA record NAME holds the given certificates (state present) or is gone (absent)."""
    name = params["name"]
    pem = None
    if params["state"] == "present":
        pem = read_pem(
            params.get("pem_path"), params.get("pem_content"), source=f"CA {name!r} PEM"
        )
        check_current(pem, what="CA certificate")

    rows = client.list_records(
        tables.CA_TABLE,
        query=tables.condition(tables.CA_TABLE, "name", "=", name),
        fields=CA_FIELDS,
    )
    attachments = (
        group_attachments(
            client.list_attachments(tables.CA_TABLE, [r["sys_id"] for r in rows])
        )
        if rows
        else {}
    )
    result: dict[str, t.Any] = {"warnings": []}

    if pem is None:
        before = (
            _ca_diff_view(client, rows[0], attachments.get(rows[0]["sys_id"], []))
            if rows
            else {}
        )
        for row in rows:
            delete_with_attachments(client, tables.CA_TABLE, row["sys_id"])
        result.update(ca=None, action="removed" if rows else "unchanged")
        return bool(rows), result, {"before": before, "after": {}}

    leaf_is_ca = all(pki.is_ca(c) for c in pem.certs)
    if not leaf_is_ca:
        result["warnings"].append(
            f"CA {name!r}: a certificate without basicConstraints CA:TRUE is registered as a CA; ServiceNow blocks self-signed "
            "certificates for certificate-based authentication by default (KB0993615)"
        )
    desired = _ca_desired(params, client)
    same = [r for r in rows if has_digest(attachments.get(r["sys_id"], []), pem.digest)]
    others = [r for r in rows if r not in same]
    undo = Undo(client)
    changed = False
    old_certs: list[t.Any] = []
    if same:
        before = _ca_diff_view(client, same[0], [], certs=pem.certs)
    elif rows:
        old_attachments = attachments.get(rows[0]["sys_id"], [])
        if old_attachments:
            old_certs = parse_attachment(
                client.attachment_content(str(old_attachments[0]["sys_id"]))
            )
        before = _ca_diff_view(client, rows[0], [], certs=old_certs)
    else:
        before = {}
    try:
        if same:
            record = same[0]
            changes = {
                f: v for f, v in desired.items() if _differs(f, v, record.get(f))
            }
            if changes:
                record = dict(
                    record, **client.update(tables.CA_TABLE, record["sys_id"], changes)
                )
                record.update(changes)
                changed = True
            action = "updated" if changes else "unchanged"
            others += same[1:]
        else:
            record = create_with_attachment(
                client,
                undo,
                tables.CA_TABLE,
                desired,
                file_name=file_name_for(name),
                content=pem.content,
            )
            changed = True
            action = "replaced" if rows else "created"
            if rows:
                warning = _stranded_mappings_warning(
                    client, name, rows[0], old_certs, pem.certs
                )
                if warning:
                    result["warnings"].append(warning)
        published = str(record.get("publish_status") or "") == tables.PUBLISH_EXISTS
        if params.get("wait_for_publish") and not check_mode and not published:
            record = wait_published(
                client,
                record["sys_id"],
                name=name,
                timeout=params["publish_timeout"],
                interval=params["poll_interval"],
            )
    except RobotCertsError as exc:
        fail_with_undo(undo, exc)

    # The old record goes only once its replacement is in place (and published, when waited for).
    for row in others:
        delete_with_attachments(client, tables.CA_TABLE, row["sys_id"])
        changed = True

    view = record_view(record, CA_FIELDS)
    view.update(cert_facts(pem.certs[0], pem.digest))
    view["certificates"] = [cert_facts(c) for c in pem.certs]
    result.update(ca=view, action=action)
    after = {
        "name": name,
        **{k: v for k, v in desired.items() if k != "name"},
        "certificates": view["certificates"],
    }
    before = {k: v for k, v in before.items() if k in after}
    return changed, result, {"before": before, "after": after}


def _identity(cert: t.Any) -> tuple[str, bytes]:
    """What a leaf's signature ties it to: the CA's subject and public key."""
    from cryptography.hazmat.primitives import serialization

    key = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return cert.subject.rfc4514_string(), bytes(key)


def _stranded_mappings_warning(
    client: SnowClient,
    name: str,
    old_record: dict[str, t.Any],
    old_certs: list[t.Any],
    new_certs: list[t.Any],
) -> str:
    """A warning when the record's new certificates drop a CA (subject or key) that active user mappings came from.

    The user mappings' ``issuer`` column holds the issuing CA's subject as the instance wrote it, so one
    query on the dropped subjects counts them; the record's own ``subject`` column is asked for as well,
    in case the instance writes names in another form than RFC 4514.
    """
    kept = {_identity(c) for c in new_certs}
    dropped = [c for c in old_certs if _identity(c) not in kept]
    subjects = [c.subject.rfc4514_string() for c in dropped]
    if not old_certs:
        recorded = tables.ref_value(old_record.get("subject"))
        new_subjects = {c.subject.rfc4514_string() for c in new_certs}
        if recorded and recorded not in new_subjects:
            subjects = [recorded]
    elif dropped:
        recorded = tables.ref_value(old_record.get("subject"))
        if recorded and recorded not in subjects:
            subjects.append(recorded)
    subjects = [s for s in subjects if "^" not in s and "\n" not in s]
    if not subjects:
        return ""
    query = tables.join_and(
        tables.condition(tables.USER_CERT_TABLE, "active", "=", "true"),
        tables.join_or(
            *(
                tables.condition(tables.USER_CERT_TABLE, "issuer", "=", subject)
                for subject in subjects
            )
        ),
    )
    stranded = client.list_records(
        tables.USER_CERT_TABLE, query=query, fields=("sys_id",)
    )
    return (
        f"CA record {name} now holds {new_certs[0].subject.rfc4514_string()}; {len(stranded)} active user mappings were "
        f"issued by the old CA {subjects[0]} and will be refused until re-issued"
    )


def _ca_diff_view(
    client: SnowClient,
    record: dict[str, t.Any],
    attachments: list[dict[str, t.Any]],
    *,
    certs: list[t.Any] | None = None,
) -> dict[str, t.Any]:
    """The record as a diff side; the attachment is downloaded only when its certificates are not already known."""
    view = {
        k: v
        for k, v in record_view(record, CA_FIELDS).items()
        if k not in ("sys_id", "subject", "issuer", "valid_from", "valid_to")
    }
    certs = list(certs or [])
    if not certs and attachments:
        certs = parse_attachment(
            client.attachment_content(str(attachments[0]["sys_id"]))
        )
    view["certificates"] = [cert_facts(c) for c in certs] or [
        record_view(record, ("subject", "issuer", "valid_from", "valid_to"))
    ]
    return view


__all__ = (
    "CA_FIELDS",
    "PEM_CONTENT_TYPE",
    "PemInput",
    "Undo",
    "cert_facts",
    "check_current",
    "create_with_attachment",
    "delete_with_attachments",
    "fail_with_undo",
    "file_name_for",
    "group_attachments",
    "has_digest",
    "is_sys_id",
    "leaf_only",
    "parse_attachment",
    "read_pem",
    "record_view",
    "run_ca",
    "wait_published",
)
