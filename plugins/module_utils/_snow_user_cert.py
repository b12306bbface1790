# This file is internal to the snowrpa.robot_certs collection and may change in any release.
"""User certificate mappings (sys_user_certificate) for a whole fleet in batched requests.

An unchanged run costs one look-up of the users' mappings (dot-walked ``user.user_name``) and one
of their attachments, each split only when the encoded IN list grows long, plus the active CA
records, their attachments and one download per CA certificate, so that a mapping whose CA record
was replaced or deactivated is reported: N robots cost about ceil(N / 180) + 3 + (CA records)
requests. A caller that has just registered and seen published the CA (snow_ca_register in the
same play) gives its PEM instead, and the CA look-ups are skipped for every certificate it issued.
Users are read only when something has to be written.
"""

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
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    CertificateError,
    RobotCertsError,
    ServiceNowError,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._snow_client import (
    SnowClient,
)

MAPPING_FIELDS = (
    "sys_id",
    "name",
    "user",
    "user.user_name",
    "active",
    "type",
    "subject",
    "issuer",
    "valid_from",
    "valid_to",
)
EXCLUSIVE_CHOICES = ("none", "deactivate", "remove")
# Stands for the CA records the caller registered: active and published by the caller's word.
_REGISTERED_ROW = {
    "sys_id": "",
    "name": "registered_ca_content",
    "publish_status": tables.PUBLISH_EXISTS,
}


class Wanted(t.NamedTuple):
    user: str
    name: str
    active: bool
    pem: certs.PemInput | None

    @property
    def key(self) -> str:
        return f"{self.user}/{self.name}"

    @property
    def certificate(self) -> certs.PemInput:
        if (
            self.pem is None
        ):  # pragma: no cover - _wanted() requires a PEM for state present
            raise AssertionError(
                "contract violation: a mapping to ensure has no certificate"
            )
        return self.pem


def _wanted(params: dict[str, t.Any]) -> list[Wanted]:
    """The mappings asked for, validated before any request is sent."""
    items = params.get("mappings") or []
    if not items and params.get("user"):
        items = [
            {
                k: params.get(k)
                for k in ("user", "name", "pem_path", "pem_content", "active")
            }
        ]
    if not items:
        raise ServiceNowError(
            "give user (with name and pem_path or pem_content) or a mappings list"
        )
    present = params["state"] == "present"
    wanted: list[Wanted] = []
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(items):
        user = str(item.get("user") or "").strip()
        if not user:
            raise ServiceNowError(
                f"mappings[{index}] has no user; give the user's user_name or sys_id"
            )
        source = f"certificate for user {user!r}"
        pem = None
        if item.get("pem_path") or item.get("pem_content"):
            if item.get("pem_path") and item.get("pem_content"):
                raise ServiceNowError(
                    f"mappings[{index}] ({user}): give pem_path or pem_content, not both"
                )
            pem = certs.read_pem(
                item.get("pem_path"), item.get("pem_content"), source=source
            )
            pem = _leaf_of_chain(pem, check=present)
            if present:
                certs.check_current(pem, what="certificate")
        elif present:
            raise ServiceNowError(
                f"mappings[{index}] ({user}): give pem_path or pem_content"
            )
        name = str(item.get("name") or "").strip()
        if not name:
            if pem is None:
                raise ServiceNowError(
                    f"mappings[{index}] ({user}): give name or the certificate to remove"
                )
            # Removal by certificate alone matches any name; a new mapping is named after its CN.
            name = _default_name(pem) if present else ""
        if (user, name or (pem.digest if pem else "")) in seen:
            raise ServiceNowError(
                f"mappings list names user {user!r} with mapping name {name!r} twice"
            )
        seen.add((user, name or (pem.digest if pem else "")))
        if present and pem is not None:
            _check_client_auth(pem, f"{user}/{name}")
        active = item.get("active")
        wanted.append(Wanted(user, name, True if active is None else bool(active), pem))
    return wanted


def _leaf_of_chain(pem: certs.PemInput, *, check: bool) -> certs.PemInput:
    """The leaf of a PEM that holds the leaf followed by its issuers (cert_export's pem_path), refusing anything else."""
    if len(pem.certs) == 1:
        return pem
    leaf, rest = pem.certs[0], pem.certs[1:]
    _issuers, unrelated = pki.split_chain(leaf, rest)
    if unrelated or pki.is_ca(leaf):
        raise CertificateError(
            f"{pem.source} holds {len(pem.certs)} certificates that are not the robot's certificate followed by its issuers; "
            "give the robot's own certificate, optionally followed by the CAs that issued it, and nothing else"
        )
    if check:
        # Each link signed by the next and each issuer a CA, in the order given.
        pki.verify_chain(leaf, rest)
    # Only the leaf is mapped: the issuers are registered as CA records with snow_ca_register.
    return certs.leaf_only(pem)


def _check_client_auth(pem: certs.PemInput, key: str) -> None:
    """Refuse a certificate that the robot can never present in a mutual TLS handshake."""
    leaf = pem.certs[0]
    subject = leaf.subject.rfc4514_string()
    if pki.is_ca(leaf):
        raise CertificateError(
            f"mapping {key}: {subject!r} is a CA certificate (basicConstraints CA:TRUE), which no robot presents to log in; "
            "map the robot's client_auth certificate and register CAs with snowrpa.robot_certs.snow_ca_register"
        )
    if not pki.cert_allows_purpose(leaf, "client_auth"):
        raise CertificateError(
            f"mapping {key}: {subject!r} lacks the client authentication EKU (or the digitalSignature key usage), so it is "
            "never sent in the TLS handshake; use the robot's client_auth certificate"
        )


def _default_name(pem: certs.PemInput) -> str:
    from cryptography.x509.oid import NameOID

    names = pem.certs[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else pem.certs[0].subject.rfc4514_string()


def _registered_cas(params: dict[str, t.Any]) -> list[t.Any]:
    """The CA certificates of registered_ca_content, checked before any request."""
    content = params.get("registered_ca_content")
    if not content:
        return []
    pem = certs.read_pem(None, content, source="registered_ca_content")
    for cert in pem.certs:
        if not pki.is_ca(cert):
            raise CertificateError(
                f"registered_ca_content holds {cert.subject.rfc4514_string()!r}, which is not a CA certificate "
                "(basicConstraints CA:TRUE); give the PEM of the CA certificates registered with snow_ca_register"
            )
    return pem.certs


def _matches_user(record: dict[str, t.Any], user: str) -> bool:
    if certs.is_sys_id(user):
        return tables.ref_value(record.get("user")) == user
    return str(record.get("user.user_name") or "") == user


def _mapping_view(
    record: dict[str, t.Any], pem: certs.PemInput | None = None
) -> dict[str, t.Any]:
    view = {
        "sys_id": str(record.get("sys_id") or ""),
        "name": str(record.get("name") or ""),
        "user": str(record.get("user.user_name") or ""),
        "user_sys_id": tables.ref_value(record.get("user")),
        "active": tables.as_bool(record.get("active", "true")),
    }
    if pem is not None:
        view.update(certs.cert_facts(pem.certs[0], pem.digest))
    else:
        view.update(
            certs.record_view(record, ("subject", "issuer", "valid_from", "valid_to"))
        )
    return view


def _diff_side(view: dict[str, t.Any]) -> dict[str, t.Any]:
    keys = (
        "name",
        "active",
        "subject",
        "issuer",
        "valid_from",
        "valid_to",
        "sha256_fingerprint",
    )
    return {k: view[k] for k in keys if k in view}


class _Fleet:
    """The instance's view of the users named in one call."""

    def __init__(
        self,
        client: SnowClient,
        wanted: list[Wanted],
        registered: list[t.Any] | None = None,
    ) -> None:
        self.client = client
        self.registered = registered or []
        users = [w.user for w in wanted]
        names = [u for u in users if not certs.is_sys_id(u)]
        ids = [u for u in users if certs.is_sys_id(u)]
        records: dict[str, dict[str, t.Any]] = {}
        if names:
            for row in client.list_in(
                tables.USER_CERT_TABLE, "user.user_name", names, fields=MAPPING_FIELDS
            ):
                records[row["sys_id"]] = row
        if ids:
            for row in client.list_in(
                tables.USER_CERT_TABLE, "user", ids, fields=MAPPING_FIELDS
            ):
                records[row["sys_id"]] = row
        self.records = list(records.values())
        self.attachments = (
            certs.group_attachments(
                client.list_attachments(tables.USER_CERT_TABLE, list(records))
            )
            if records
            else {}
        )
        self._users: dict[str, str] | None = None
        self._cas: list[tuple[dict[str, t.Any], list[t.Any]]] | None = None
        self._contents: dict[str, list[t.Any]] = {}

    def of_user(self, user: str) -> list[dict[str, t.Any]]:
        return [r for r in self.records if _matches_user(r, user)]

    def digest_of(self, record: dict[str, t.Any], digest: str) -> bool:
        return certs.has_digest(self.attachments.get(record["sys_id"], []), digest)

    def certificates_of(self, record: dict[str, t.Any]) -> list[t.Any]:
        """The certificates attached to RECORD (downloaded once, only when needed)."""
        sys_id = record["sys_id"]
        if sys_id not in self._contents:
            found: list[t.Any] = []
            for attachment in self.attachments.get(sys_id, []):
                found += certs.parse_attachment(
                    self.client.attachment_content(str(attachment["sys_id"]))
                )
            self._contents[sys_id] = found
        return self._contents[sys_id]

    def user_sys_ids(self, wanted: list[Wanted]) -> dict[str, str]:
        """user (as given) -> sys_id, read in one batch for the users that get a new mapping."""
        if self._users is None:
            self._users = {}
            for w in wanted:
                for record in self.of_user(w.user):
                    self._users[w.user] = tables.ref_value(record.get("user"))
            missing = [w.user for w in wanted if w.user not in self._users]
            names = [u for u in missing if not certs.is_sys_id(u)]
            ids = [u for u in missing if certs.is_sys_id(u)]
            if names:
                for row in self.client.list_in(
                    tables.SYS_USER,
                    "user_name",
                    names,
                    fields=("sys_id", "user_name", "active"),
                ):
                    self._users[str(row["user_name"])] = str(row["sys_id"])
            if ids:
                for row in self.client.list_in(
                    tables.SYS_USER,
                    "sys_id",
                    ids,
                    fields=("sys_id", "user_name", "active"),
                ):
                    self._users[str(row["sys_id"])] = str(row["sys_id"])
            unknown = sorted({w.user for w in wanted if w.user not in self._users})
            if unknown:
                raise ServiceNowError(
                    f"no sys_user {', '.join(unknown)} on the instance; create the robot's service account first"
                )
        return self._users

    def _active_cas(self) -> list[tuple[dict[str, t.Any], list[t.Any]]]:
        """Active CA records with their attached certificates, read once: records, attachments, then each PEM."""
        if self._cas is None:
            rows = self.client.list_records(
                tables.CA_TABLE,
                query=tables.condition(tables.CA_TABLE, "active", "=", "true"),
                fields=("sys_id", "name", "publish_status"),
            )
            grouped = (
                certs.group_attachments(
                    self.client.list_attachments(
                        tables.CA_TABLE, [r["sys_id"] for r in rows]
                    )
                )
                if rows
                else {}
            )
            self._cas = []
            for row in rows:
                found: list[t.Any] = []
                for attachment in grouped.get(row["sys_id"], []):
                    found += certs.parse_attachment(
                        self.client.attachment_content(str(attachment["sys_id"]))
                    )
                self._cas.append((row, found))
        return self._cas

    def _issuers_of(self, w: Wanted) -> list[tuple[dict[str, t.Any], t.Any]]:
        """The CA records that issued W's certificate: the registered ones given, else the instance's."""
        leaf = w.certificate.certs[0]
        given = [
            (_REGISTERED_ROW, c) for c in self.registered if pki.is_issued_by(leaf, c)
        ]
        if given:
            return given
        return [
            (row, c)
            for row, found in self._active_cas()
            for c in found
            if pki.is_issued_by(leaf, c)
        ]

    def _ca_table_missing(self) -> bool:
        # Check mode before the plugin is active: no CA can be registered yet, so there is nothing to check against.
        return tables.CA_TABLE in self.client.missing_tables

    def check_issuers(self, wanted: list[Wanted]) -> None:
        """Fail, before any write, unless each certificate chains to an active, published CA record."""
        for w in wanted:
            leaf = w.certificate.certs[0]
            issuers = self._issuers_of(w)
            if self._ca_table_missing():
                return
            if not issuers:
                raise CertificateError(
                    f"certificate for user {w.user!r} ({leaf.subject.rfc4514_string()}) was issued by {leaf.issuer.rfc4514_string()!r}, "
                    "which is not registered as an active CA on the instance; register it with snowrpa.robot_certs.snow_ca_register first"
                )
            if not any(
                str(row.get("publish_status")) == tables.PUBLISH_EXISTS
                for row, _cert in issuers
            ):
                row = issuers[0][0]
                raise ServiceNowError(
                    f"CA record {row.get('name')!r}, which issued the certificate for user {w.user!r}, has publish status "
                    f"{row.get('publish_status')!r}, not {tables.PUBLISH_EXISTS!r}; run snow_ca_register with wait_for_publish first"
                )

    def check_kept_issuers(self, kept: list[Wanted]) -> None:
        """Fail when mappings that stay as they are were issued by a CA the instance no longer holds as active and published.

        Such a mapping still exists, but the instance refuses its mutual TLS login, for instance after the CA
        record was given another CA's certificate.
        """
        orphans = []
        for w in kept:
            issuers = self._issuers_of(w)
            if self._ca_table_missing():
                return
            if not any(
                str(row.get("publish_status")) == tables.PUBLISH_EXISTS
                for row, _cert in issuers
            ):
                orphans.append(w)
        if not orphans:
            return
        keys = [w.key for w in orphans]
        shown = ", ".join(keys[:10]) + (
            f" and {len(keys) - 10} more" if len(keys) > 10 else ""
        )
        issuers = sorted(
            {w.certificate.certs[0].issuer.rfc4514_string() for w in orphans}
        )
        raise CertificateError(
            f"{len(keys)} mapping(s) ({shown}) hold certificates issued by {' / '.join(repr(i) for i in issuers)}, which is "
            "no longer an active, published CA record on the instance, so their mutual TLS login is refused; re-issue them "
            "from the registered CA and map the new certificates, or register their CA again with "
            "snowrpa.robot_certs.snow_ca_register"
        )

    def others(
        self, wanted: list[Wanted], skip: set[str], inactive: set[str]
    ) -> list[dict[str, t.Any]]:
        """Each user's mappings other than SKIP (the ones this call ensured or removed), as they are after the run."""
        found: list[dict[str, t.Any]] = []
        seen: set[str] = set()
        for w in wanted:
            for record in self.of_user(w.user):
                sys_id = str(record["sys_id"])
                if sys_id in skip or sys_id in seen:
                    continue
                seen.add(sys_id)
                active = tables.as_bool(record.get("active")) and sys_id not in inactive
                found.append(
                    {
                        "user": w.user,
                        "sys_id": sys_id,
                        "name": str(record.get("name") or ""),
                        "active": active,
                    }
                )
        return found


def run(
    params: dict[str, t.Any], client: SnowClient, check_mode: bool
) -> tuple[bool, dict[str, t.Any], dict[str, t.Any]]:
    """Ensure the mappings exist with these certificates (present) or are gone (absent)."""
    wanted = _wanted(params)
    registered = _registered_cas(params) if params["state"] == "present" else []
    fleet = _Fleet(client, wanted, registered)
    if params["state"] == "absent":
        return _remove(fleet, wanted)
    return _ensure(fleet, wanted, params.get("exclusive") or "none", check_mode)


def _remove(
    fleet: _Fleet, wanted: list[Wanted]
) -> tuple[bool, dict[str, t.Any], dict[str, t.Any]]:
    before: dict[str, t.Any] = {}
    removed: list[dict[str, t.Any]] = []
    done: set[str] = set()
    for w in wanted:
        for record in fleet.of_user(w.user):
            if record["sys_id"] in done:
                continue
            if (w.name and record["name"] == w.name) or (
                w.pem is not None and fleet.digest_of(record, w.certificate.digest)
            ):
                done.add(record["sys_id"])
                view = _mapping_view(record)
                certs.delete_with_attachments(
                    fleet.client, tables.USER_CERT_TABLE, record["sys_id"]
                )
                before[f"{w.user}/{record['name']}"] = _diff_side(view)
                removed.append(dict(view, action="removed"))
    fleet.records = [
        r for r in fleet.records if r["sys_id"] not in {v["sys_id"] for v in removed}
    ]
    result = {
        "mappings": removed,
        "deactivated": [],
        "removed": removed,
        "other_mappings": fleet.others(wanted, set(), set()),
    }
    return bool(removed), result, {"before": before, "after": {}}


def _ensure(
    fleet: _Fleet, wanted: list[Wanted], exclusive: str, check_mode: bool
) -> tuple[bool, dict[str, t.Any], dict[str, t.Any]]:
    client = fleet.client
    plans: list[
        tuple[Wanted, dict[str, t.Any] | None, dict[str, t.Any], list[dict[str, t.Any]]]
    ] = []
    for w in wanted:
        mine = fleet.of_user(w.user)
        same_cert = [r for r in mine if fleet.digest_of(r, w.certificate.digest)]
        keep = next((r for r in same_cert if r["name"] == w.name), None) or (
            same_cert[0] if same_cert else None
        )
        changes: dict[str, t.Any] = {}
        if keep is not None:
            if keep["name"] != w.name:
                changes["name"] = w.name
            if tables.as_bool(keep.get("active")) != w.active:
                changes["active"] = "true" if w.active else "false"
        # Records of this name holding another certificate are replaced; duplicates of this certificate go too.
        replaced = [
            r for r in mine if r is not keep and (r["name"] == w.name or r in same_cert)
        ]
        plans.append((w, keep, changes, replaced))

    to_create = [w for w, keep, _changes, _replaced in plans if keep is None]
    users: dict[str, str] = {}
    if to_create:
        users = fleet.user_sys_ids(to_create)
        fleet.check_issuers(to_create)
    # A kept mapping is only as good as its CA record: an unchanged run still proves the issuer is there.
    kept = [
        w for w, keep, _changes, _replaced in plans if keep is not None and w.active
    ]
    if kept:
        fleet.check_kept_issuers(kept)

    undo = certs.Undo(client)
    results: list[dict[str, t.Any]] = []
    before: dict[str, t.Any] = {}
    after: dict[str, t.Any] = {}
    changed = False
    kept_ids: set[str] = set()
    try:
        for w, keep, changes, replaced in plans:
            if keep is None:
                fields = {
                    "name": w.name,
                    "user": users[w.user],
                    "active": "true" if w.active else "false",
                    "type": tables.USER_CERT_TYPE,
                }
                record = certs.create_with_attachment(
                    client,
                    undo,
                    tables.USER_CERT_TABLE,
                    fields,
                    file_name=certs.file_name_for(w.name),
                    content=w.certificate.content,
                )
                record.setdefault(
                    "user.user_name", "" if certs.is_sys_id(w.user) else w.user
                )
                action = "replaced" if replaced else "created"
            elif changes:
                record = dict(keep, **changes)
                client.update(tables.USER_CERT_TABLE, keep["sys_id"], changes)
                action = "updated"
            else:
                record, action = keep, "unchanged"
            view = _mapping_view(
                dict(record, user=record.get("user") or _user_sys_id(users, w)), w.pem
            )
            view["user"] = view["user"] or w.user
            results.append(dict(view, action=action))
            kept_ids.add(view["sys_id"])
            if action != "unchanged":
                changed = True
                if keep is not None:
                    before[w.key] = _diff_side(_mapping_view(keep, w.pem))
                elif replaced:
                    before[w.key] = _diff_side(_old_view(fleet, replaced[0]))
                # Only what changes goes into the diff, so one new robot in a fleet of hundreds reads as one.
                after[w.key] = _diff_side(view)
    except RobotCertsError as exc:
        certs.fail_with_undo(undo, exc)

    # Old records go only after every new mapping is in place and active.
    removed: list[dict[str, t.Any]] = []
    deactivated: list[dict[str, t.Any]] = []
    for _w, _keep, _changes, replaced in plans:
        for record in replaced:
            if record["sys_id"] in kept_ids or record["sys_id"] in {
                r["sys_id"] for r in removed
            }:
                continue
            certs.delete_with_attachments(
                client, tables.USER_CERT_TABLE, record["sys_id"]
            )
            removed.append(dict(_mapping_view(record), action="removed"))
            changed = True
    if exclusive != "none":
        for w, _keep, _changes, _replaced in plans:
            for record in _same_ca_others(
                fleet, w, kept_ids | {r["sys_id"] for r in removed}, exclusive
            ):
                view = _mapping_view(record)
                if exclusive == "remove":
                    certs.delete_with_attachments(
                        client, tables.USER_CERT_TABLE, record["sys_id"]
                    )
                    removed.append(dict(view, action="removed"))
                else:
                    client.update(
                        tables.USER_CERT_TABLE, record["sys_id"], {"active": "false"}
                    )
                    deactivated.append(dict(view, active=False, action="deactivated"))
                before[f"{w.user}/{record['name']}"] = _diff_side(view)
                after[f"{w.user}/{record['name']}"] = (
                    {}
                    if exclusive == "remove"
                    else dict(_diff_side(view), active=False)
                )
                changed = True
    others = fleet.others(
        wanted,
        kept_ids | {r["sys_id"] for r in removed},
        {r["sys_id"] for r in deactivated},
    )
    result = {
        "mappings": results,
        "deactivated": deactivated,
        "removed": removed,
        "other_mappings": others,
    }
    return changed, result, {"before": before, "after": after}


def _user_sys_id(users: dict[str, str], w: Wanted) -> str:
    return users.get(w.user, w.user if certs.is_sys_id(w.user) else "")


def _old_view(fleet: _Fleet, record: dict[str, t.Any]) -> dict[str, t.Any]:
    view = _mapping_view(record)
    found = fleet.certificates_of(record)
    if found:
        view.update(certs.cert_facts(found[0]))
    return view


def _same_ca_others(
    fleet: _Fleet, w: Wanted, skip: set[str], exclusive: str
) -> list[dict[str, t.Any]]:
    """The user's other mappings whose certificate comes from the same CA as W's, where an action is due."""
    issuer = w.certificate.certs[0].issuer
    others = []
    for record in fleet.of_user(w.user):
        if record["sys_id"] in skip or (
            exclusive == "deactivate" and not tables.as_bool(record.get("active"))
        ):
            continue
        if any(c.issuer == issuer for c in fleet.certificates_of(record)):
            others.append(record)
    return others


__all__ = ("EXCLUSIVE_CHOICES", "MAPPING_FIELDS", "Wanted", "run")
