# This file is internal to the snowrpa.robot_certs collection and may change in any release.
"""Fleet audit: collected facts in, findings and a deterministic JSON document out.

Everything here is pure except ``load_certificate``, which reads one controller file. The
document depends only on its inputs and the report date, so an unchanged fleet audited twice
on the same day gives byte-identical JSON and HTML.
"""

from __future__ import annotations

import datetime
import json
import os
import typing as t

from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    CertificateError,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._files import (
    PUBLIC_MODE,
    PlannedWrite,
    apply_writes,
    check_writable,
    needs_write,
    read_file,
    read_optional,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._pki import (
    cert_summary,
    load_certificates,
)

SCHEMA_VERSION = 1

SEVERITIES = ("error", "warning", "info")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
# "info" says what was not checked; it is never a problem of a robot and never changes the status.
PROBLEM_SEVERITIES = ("error", "warning")

ROLES = ("client", "code_signing")
ROLE_LABELS = {
    "client": "client certificate",
    "code_signing": "code-signing certificate",
    "ca": "robot CA certificate",
}

# Windows facts states; "skipped" is a robot declared without a Windows host.
WINDOWS_STATES = ("checked", "unreachable", "failed", "skipped", "not_collected")

# certlm's "Manage Private Keys" masks, and the specific rights they come to once generic
# bits are mapped, as win_key_acl and win_cert_info map them (plugins/module_utils/_RobotCertKeyAcl.psm1).
READ_MASK = 0x80120089
FULL_CONTROL_MASK = 0xD01F01FF
_NORMAL_READ = 0x00120089
_NORMAL_FULL = 0x001F01FF
_GENERIC_MAP = (
    (0x80000000, 0x00120089),
    (0x40000000, 0x00120116),
    (0x20000000, 0x001200A0),
    (0x10000000, 0x001F01FF),
)
_RIGHTS_MASK = {"read": READ_MASK, "full_control": FULL_CONTROL_MASK}

# One entry per kind of problem: severity, the sentence template and what to do.
KINDS: dict[str, dict[str, str]] = {
    "cert_expired": {
        "severity": "error",
        "title": "Certificate expired",
        "message": "The {label} expired on {date} ({days} days ago).",
        "action": "Run playbooks/rotate.yml for this robot now; until then it cannot {purpose}.",
    },
    "cert_expiring": {
        "severity": "warning",
        "title": "Certificate expiring soon",
        "message": "The {label} expires on {date}, in {days} days (warning window: {warn_days} days).",
        "action": "Run playbooks/rotate.yml before {date} to renew it without downtime.",
    },
    "cert_file_missing": {
        "severity": "error",
        "title": "Certificate file missing on the controller",
        "message": "The {label} is not on the controller: {reason}.",
        "action": "Run playbooks/provision.yml for this robot to issue it, or fix the path in the inventory.",
    },
    "cert_file_unreadable": {
        "severity": "error",
        "title": "Certificate file unreadable or damaged",
        "message": "The {label} file {path} cannot be used: {reason}.",
        "action": "Replace {path} with the robot's certificate (PEM or DER), for example by running playbooks/provision.yml "
        "for this robot after moving the damaged file away, or make the file readable for the controller user.",
    },
    "ca_expired": {
        "severity": "error",
        "title": "Robot CA expired",
        "message": "The robot CA certificate expired on {date} ({days} days ago); no robot can log in with mutual TLS.",
        "action": "Create a new robot CA, register it in ServiceNow and re-issue every robot certificate.",
    },
    "ca_expiring": {
        "severity": "warning",
        "title": "Robot CA expiring soon",
        "message": "The robot CA certificate expires on {date}, in {days} days (warning window: {warn_days} days).",
        "action": "Plan a new robot CA now: register it in ServiceNow next to the old one, then rotate the robots.",
    },
    "ca_file_missing": {
        "severity": "error",
        "title": "Robot CA file missing on the controller",
        "message": "The robot CA certificate is not on the controller: {reason}.",
        "action": "Restore the CA files or run playbooks/provision.yml, which creates the CA once.",
    },
    "ca_file_unreadable": {
        "severity": "error",
        "title": "Robot CA file unreadable or damaged",
        "message": "The robot CA certificate file {path} cannot be used: {reason}.",
        "action": "Restore {path} from the CA's backup (the certificate the robots were issued with), or make it readable "
        "for the controller user; do not create a new CA unless the old one is lost.",
    },
    "ca_not_registered": {
        "severity": "error",
        "title": "Robot CA not registered in ServiceNow",
        "message": "ServiceNow has no CA record for the robot CA ({subject}); it refuses every robot mapping.",
        "action": "Run playbooks/provision.yml (role servicenow_cba registers the CA), then re-run this audit.",
    },
    "ca_not_published": {
        "severity": "error",
        "title": "Robot CA not published",
        "message": "The ServiceNow CA record {record} has publish status '{status}', not 'exists'; mutual TLS logins fail until it is published.",
        "action": "Wait a few minutes and re-run the audit; if it stays, re-register the CA with playbooks/provision.yml.",
    },
    "ca_inactive": {
        "severity": "error",
        "title": "Robot CA record inactive",
        "message": "The ServiceNow CA record {record} for the robot CA is inactive; mapped robots cannot log in.",
        "action": "Set the record active in sys_ca_certificate, or run playbooks/provision.yml.",
    },
    "servicenow_unavailable": {
        "severity": "warning",
        "title": "ServiceNow check failed",
        "message": "The ServiceNow facts could not be collected: {reason}; the CA registration and the mappings were not checked.",
        "action": "Check the instance connection settings and credentials, then re-run this audit.",
    },
    "servicenow_not_checked": {
        "severity": "info",
        "title": "ServiceNow not checked",
        "message": "ServiceNow was left out of this audit ({reason}); the CA registration and the mappings were not checked.",
        "action": "To include it, run the audit with robot_certs_servicenow true (the default) and the instance settings.",
    },
    "mapping_missing": {
        "severity": "error",
        "title": "Mapping missing in ServiceNow",
        "message": "ServiceNow user '{snow_user}' has no certificate mapping at all; the robot cannot log in with mutual TLS.",
        "action": "Run playbooks/provision.yml for this robot (role servicenow_cba maps its client certificate).",
    },
    "mapping_other_certificate": {
        "severity": "error",
        "title": "Mapping is for a different certificate",
        "message": "ServiceNow user '{snow_user}' is mapped to {count} certificate(s), none of them the controller's client certificate ({thumbprint}).",
        "action": "Run playbooks/provision.yml for this robot to map its current certificate; remove stale mappings afterwards.",
    },
    "mapping_inactive": {
        "severity": "error",
        "title": "Mapping inactive",
        "message": "The ServiceNow mapping {record} of user '{snow_user}' to the client certificate is inactive.",
        "action": "Set the mapping active in sys_user_certificate, or run playbooks/provision.yml for this robot.",
    },
    "snow_user_unknown": {
        "severity": "error",
        "title": "ServiceNow user not set",
        "message": "The robot has no ServiceNow user (robot_snow_user), so its mapping cannot be checked.",
        "action": "Set robot_snow_user for this robot in the inventory.",
    },
    "host_unreachable": {
        "severity": "error",
        "title": "Windows host unreachable",
        "message": "The robot's Windows host could not be checked: {reason}.",
        "action": "Check that the machine is up and WinRM answers, then re-run this audit.",
    },
    "host_check_failed": {
        "severity": "error",
        "title": "Windows check failed",
        "message": "Reading the certificates on the robot's Windows host failed: {reason}.",
        "action": "Fix the cause named here (credentials, become, WinRM), then re-run this audit.",
    },
    "windows_not_checked": {
        "severity": "info",
        "title": "Windows host not checked",
        "message": "No win_cert_info result was given for this robot; its certificate stores, private key and key ACL were not checked.",
        "action": "To include it, run the audit with robot_certs_windows true (the default), or set robot_windows_host: false "
        "for a robot without a Windows host.",
    },
    "windows_cert_missing": {
        "severity": "error",
        "title": "Certificate not installed on the robot",
        "message": "The {label} ({thumbprint}) is not in {store} on the robot.",
        "action": "Run playbooks/provision.yml for this robot to install it.",
    },
    "windows_cert_differs": {
        "severity": "error",
        "title": "Certificate on the robot differs",
        "message": "On the robot, {store} holds {found}, not the controller's {label} ({thumbprint}).",
        "action": "Run playbooks/provision.yml for this robot so the robot and the controller agree.",
    },
    "windows_key_missing": {
        "severity": "error",
        "title": "Private key missing on the robot",
        "message": "The {label} ({thumbprint}) is installed on the robot without a usable private key{detail}.",
        "action": "Remove it from the robot's store and run playbooks/provision.yml for this robot, which imports it with its key.",
    },
    "key_acl_no_read": {
        "severity": "error",
        "title": "Key ACL: robot account lacks Read",
        "message": "Windows account '{account}' has no Read access to the client certificate's private key; the robot cannot use it.",
        "action": "Run playbooks/provision.yml for this robot (it grants Read), or add Read in certlm.msc > Manage Private Keys.",
    },
    "key_acl_full_control": {
        "severity": "warning",
        "title": "Key ACL: robot account has Full control",
        "message": "Windows account '{account}' has Full control of the client certificate's private key; Read is all it needs.",
        "action": "Remove Full control for this account in certlm.msc > Manage Private Keys, or run the key ACL task with Full control removal.",
    },
}

_PURPOSE = {
    "client": "log in to ServiceNow with mutual TLS",
    "code_signing": "sign or run signed automation packages",
}


def load_certificate(path: str | None, *, what: str) -> dict[str, t.Any]:
    """Facts of the first certificate in the controller file PATH; an unreadable file is a fact, not an error.

    C(damaged) tells a file that exists but is not a readable certificate from one that is not there.
    """
    if not path:
        return {
            "path": None,
            "present": False,
            "damaged": False,
            "error": "no path given",
        }
    if not os.path.lexists(path):
        return {
            "path": path,
            "present": False,
            "damaged": False,
            "error": f"{path} does not exist",
        }
    try:
        certs = load_certificates(read_file(path, what=what), source=f"{what} {path!r}")
    except CertificateError as exc:
        return {"path": path, "present": False, "damaged": True, "error": str(exc)}
    summary = cert_summary(certs[0])
    return {
        "path": path,
        "present": True,
        "damaged": False,
        "error": None,
        "subject": summary["subject"],
        "issuer": summary["issuer"],
        "serial": format(summary["serial_number"], "X"),
        "thumbprint": summary["thumbprint"],
        "not_before": summary["not_before"],
        "not_after": summary["not_after"],
    }


def parse_now(
    value: str | None, *, default: datetime.datetime | None = None
) -> datetime.datetime:
    """The report moment: VALUE (ISO 8601, naive means UTC) or the start of today in UTC.

    Reports are dated by day by default so that an unchanged fleet gives unchanged files on re-runs.
    """
    if value:
        try:
            moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise CertificateError(
                f"now {value!r} is not an ISO 8601 date or date and time; use for example 2026-05-01 or 2026-05-01T12:00:00Z"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        return moment.astimezone(datetime.UTC)
    current = default or datetime.datetime.now(datetime.UTC)
    return current.astimezone(datetime.UTC).replace(
        hour=0, minute=0, second=0, microsecond=0
    )


def iso(moment: datetime.datetime) -> str:
    """UTC ISO 8601 with a Z, second precision."""
    return (
        moment.astimezone(datetime.UTC)
        .replace(microsecond=0)
        .isoformat()
        .replace("+00:00", "Z")
    )


def parse_time(value: t.Any) -> datetime.datetime | None:
    """A timestamp from a module return (ISO 8601 or ServiceNow's 'YYYY-MM-DD HH:MM:SS' UTC)."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        text = str(value).strip().replace("Z", "+00:00")
        try:
            moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)


def normalise_thumbprint(value: t.Any) -> str | None:
    """Windows thumbprint form: 40 upper-case hex digits, separators removed."""
    if not value:
        return None
    text = "".join(ch for ch in str(value) if ch.isalnum()).upper()
    return text or None


def days_between(now: datetime.datetime, moment: datetime.datetime) -> int:
    """Whole days from NOW to MOMENT, rounded down (negative once MOMENT has passed)."""
    return (moment - now) // datetime.timedelta(days=1)


def _finding(
    kind: str, robot: str | None, certificate: str | None, **values: t.Any
) -> dict[str, t.Any]:
    spec = KINDS[kind]
    return {
        "severity": spec["severity"],
        "kind": kind,
        "robot": robot,
        "certificate": certificate,
        "title": spec["title"],
        "message": spec["message"].format(**values),
        "action": spec["action"].format(**values),
    }


def _expiry_findings(
    facts: dict[str, t.Any],
    *,
    role: str,
    robot: str | None,
    now: datetime.datetime,
    warn_days: int,
) -> list[dict[str, t.Any]]:
    not_after = parse_time(facts.get("not_after"))
    if not_after is None:
        return []
    days = days_between(now, not_after)
    values = {
        "label": ROLE_LABELS[role],
        "date": not_after.date().isoformat(),
        "warn_days": warn_days,
        "purpose": _PURPOSE.get(role, ""),
    }
    prefix = "ca" if role == "ca" else "cert"
    if not_after <= now:
        return [_finding(f"{prefix}_expired", robot, role, days=-days, **values)]
    if days < warn_days:
        return [_finding(f"{prefix}_expiring", robot, role, days=days, **values)]
    return []


def certificate_status(
    facts: dict[str, t.Any] | None, *, now: datetime.datetime, warn_days: int
) -> str:
    """One word for a certificate on the timeline: ok, expiring, expired or missing."""
    if not facts or not facts.get("present"):
        return "missing"
    not_after = parse_time(facts.get("not_after"))
    if not_after is None:
        return "missing"
    if not_after <= now:
        return "expired"
    if days_between(now, not_after) < warn_days:
        return "expiring"
    return "ok"


def _ca_findings(
    ca: dict[str, t.Any] | None,
    servicenow: dict[str, t.Any],
    *,
    now: datetime.datetime,
    warn_days: int,
) -> list[dict[str, t.Any]]:
    if not ca or not ca.get("present"):
        reason = (ca or {}).get("error") or "no CA path given"
        if (ca or {}).get("damaged"):
            return [
                _finding(
                    "ca_file_unreadable", None, "ca", path=ca["path"], reason=reason
                )
            ]
        return [_finding("ca_file_missing", None, "ca", reason=reason)]
    findings = _expiry_findings(ca, role="ca", robot=None, now=now, warn_days=warn_days)
    if not servicenow.get("collected"):
        return findings
    records = [r for r in servicenow.get("cas", []) if _same_certificate(r, ca)]
    if not records:
        return findings + [
            _finding(
                "ca_not_registered",
                None,
                "ca",
                subject=ca.get("subject") or ca.get("thumbprint"),
            )
        ]
    # Several records for one CA happen after a re-registration; the best one decides.
    usable = [
        r for r in records if r.get("active") and r.get("publish_status") == "exists"
    ]
    if usable:
        return findings
    active = [r for r in records if r.get("active")]
    if not active:
        return findings + [
            _finding("ca_inactive", None, "ca", record=_record_name(records[0]))
        ]
    record = active[0]
    return findings + [
        _finding(
            "ca_not_published",
            None,
            "ca",
            record=_record_name(record),
            status=record.get("publish_status") or "unknown",
        )
    ]


def _record_name(record: dict[str, t.Any]) -> str:
    name = record.get("name") or ""
    sys_id = record.get("sys_id") or ""
    if name and sys_id:
        return f"'{name}' ({sys_id})"
    return f"'{name or sys_id or 'unnamed'}'"


def _same_certificate(record: dict[str, t.Any], facts: dict[str, t.Any]) -> bool:
    """Does a ServiceNow record describe the certificate FACTS? Thumbprint first, else subject, issuer and expiry."""
    mine = normalise_thumbprint(facts.get("thumbprint"))
    listed = [record.get("thumbprint"), *(record.get("thumbprints") or [])]
    theirs = {normalise_thumbprint(value) for value in listed if value}
    if mine and theirs:
        return mine in theirs
    if not record.get("subject") or not record.get("valid_to"):
        return False
    same_expiry = parse_time(record.get("valid_to")) == parse_time(
        facts.get("not_after")
    )
    same_names = _dn_key(record.get("subject")) == _dn_key(facts.get("subject"))
    issuer_known = record.get("issuer") and facts.get("issuer")
    same_issuer = not issuer_known or _dn_key(record.get("issuer")) == _dn_key(
        facts.get("issuer")
    )
    return bool(same_expiry and same_names and same_issuer)


def _dn_key(value: t.Any) -> tuple[str, ...]:
    """Order- and spacing-insensitive form of a distinguished name (RFC 4514 or 'CN=x, O=y')."""
    if not value:
        return ()
    parts = [
        p.strip().lower() for p in str(value).replace(";", ",").split(",") if p.strip()
    ]
    return tuple(sorted("=".join(s.strip() for s in p.split("=", 1)) for p in parts))


def _common_name(value: t.Any) -> str | None:
    for part in _dn_key(value):
        if part.startswith("cn="):
            return part[3:]
    return None


def _mapping_findings(
    robot: dict[str, t.Any], servicenow: dict[str, t.Any]
) -> list[dict[str, t.Any]]:
    name = robot["name"]
    client = robot.get("client") or {}
    if not servicenow.get("collected") or not client.get("present"):
        return []
    user = robot.get("snow_user")
    if not user:
        return [_finding("snow_user_unknown", name, "client")]
    mappings = [
        m
        for m in servicenow.get("mappings", [])
        if str(m.get("user_name", "")).lower() == str(user).lower()
    ]
    if not mappings:
        return [_finding("mapping_missing", name, "client", snow_user=user)]
    matching = [m for m in mappings if _same_certificate(m, client)]
    if not matching:
        return [
            _finding(
                "mapping_other_certificate",
                name,
                "client",
                snow_user=user,
                count=len(mappings),
                thumbprint=client.get("thumbprint"),
            )
        ]
    if not any(m.get("active") for m in matching):
        return [
            _finding(
                "mapping_inactive",
                name,
                "client",
                snow_user=user,
                record=_record_name(matching[0]),
            )
        ]
    return []


def _windows_findings(robot: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    name = robot["name"]
    windows = robot.get("windows") or {}
    status = windows.get("status")
    if status == "unreachable":
        return [
            _finding(
                "host_unreachable",
                name,
                None,
                reason=windows.get("message") or "unreachable",
            )
        ]
    if status == "failed":
        reason = windows.get("message") or "no reason given"
        return [_finding("host_check_failed", name, None, reason=reason)]
    if status == "not_collected":
        return [_finding("windows_not_checked", name, None)]
    if status != "checked":
        return []
    findings: list[dict[str, t.Any]] = []
    # A store that was not read (no robot account to become, say) tells nothing about its certificate.
    for role in windows.get("checked_roles", ROLES):
        facts = robot.get(role) or {}
        if not facts.get("present"):
            continue
        findings += _installed_findings(robot, role, facts, windows)
    return findings


def _installed_findings(
    robot: dict[str, t.Any],
    role: str,
    facts: dict[str, t.Any],
    windows: dict[str, t.Any],
) -> list[dict[str, t.Any]]:
    name = robot["name"]
    wanted = normalise_thumbprint(facts.get("thumbprint"))
    store_certs = [c for c in windows.get("certificates", []) if c.get("role") == role]
    store = (
        "LocalMachine\\My" if role == "client" else "the robot user's CurrentUser\\My"
    )
    values = {"label": ROLE_LABELS[role], "thumbprint": wanted, "store": store}
    installed = [
        c for c in store_certs if normalise_thumbprint(c.get("thumbprint")) == wanted
    ]
    if not installed:
        # Only certificates with this robot's common name count as "a different one": stores hold others too.
        # The CN alone is compared because Windows and OpenSSL write the rest of a DN differently.
        mine = _common_name(facts.get("subject"))
        others = sorted(
            {
                normalise_thumbprint(c.get("thumbprint")) or "?"
                for c in store_certs
                if mine and _common_name(c.get("subject")) == mine
            }
        )
        if others:
            return [
                _finding(
                    "windows_cert_differs",
                    name,
                    role,
                    found=", ".join(others),
                    **values,
                )
            ]
        return [_finding("windows_cert_missing", name, role, **values)]
    cert = installed[0]
    if cert.get("has_private_key") is False:
        detail = f" ({cert['key_error']})" if cert.get("key_error") else ""
        return [_finding("windows_key_missing", name, role, detail=detail, **values)]
    if role != "client":
        return []
    return _acl_findings(name, robot.get("windows_account"), cert.get("key_acl"))


def access_of(entries: t.Any, account: str | None) -> dict[str, bool] | None:
    """What ACL ENTRIES give ACCOUNT explicitly: {'read': bool, 'full_control': bool}, None if unknown.

    Matches the account by name (DOMAIN\\user or user, case-insensitive) or SID; deny entries and group
    membership do not count, as for the key ACL module: Windows grants key access per ACE, and the
    robot's account is what the audit is about.
    """
    if entries is None or not account:
        return None
    wanted = _account_key(account)
    mask = 0
    for entry in entries:
        if str(entry.get("type") or "allow").lower() != "allow":
            continue
        names = [_account_key(entry.get(k)) for k in ("account", "sid") if entry.get(k)]
        if any(_same_account(wanted, name) for name in names):
            mask |= normal_mask(_entry_mask(entry))
    return {
        "read": mask & _NORMAL_READ == _NORMAL_READ,
        "full_control": mask & _NORMAL_FULL == _NORMAL_FULL,
    }


def _account_key(value: t.Any) -> str:
    text = str(value or "").strip().lower()
    return text[2:] if text.startswith(".\\") else text


def _same_account(left: str, right: str) -> bool:
    # A bare user name matches DOMAIN\user; two different domains never match.
    if left == right:
        return True
    if "\\" in left and "\\" in right:
        return False
    return left.rsplit("\\", 1)[-1] == right.rsplit("\\", 1)[-1]


def _entry_mask(entry: dict[str, t.Any]) -> int:
    """The access mask of one ACE: its C(mask) (int or hex string), else its C(rights) name."""
    raw = entry.get("mask")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip():
        try:
            return int(raw, 0)
        except ValueError:
            pass
    return _RIGHTS_MASK.get(str(entry.get("rights") or "").lower(), 0)


def normal_mask(mask: int) -> int:
    """MASK with its generic bits replaced by the specific key rights they grant."""
    normal = mask & 0x0FFFFFFF
    for generic, specific in _GENERIC_MAP:
        if mask & generic:
            normal |= specific
    return normal


def _acl_findings(
    name: str, account: str | None, entries: t.Any
) -> list[dict[str, t.Any]]:
    access = access_of(entries, account)
    if access is None:
        return []
    if access["full_control"]:
        return [_finding("key_acl_full_control", name, "client", account=account)]
    if not access["read"]:
        return [_finding("key_acl_no_read", name, "client", account=account)]
    return []


def sort_findings(findings: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """Most severe first; fleet-wide (CA, ServiceNow) before per-robot; then robot and kind, for stable output."""
    order = list(KINDS)
    return sorted(
        findings,
        key=lambda f: (
            SEVERITY_RANK[f["severity"]],
            f["robot"] is not None,
            f["robot"] or "",
            order.index(f["kind"]),
            f["certificate"] or "",
        ),
    )


def build_report(
    *,
    robots: list[dict[str, t.Any]],
    ca: dict[str, t.Any] | None,
    servicenow: dict[str, t.Any] | None,
    now: datetime.datetime,
    warn_days: int,
    title: str = "Robot certificate audit",
) -> dict[str, t.Any]:
    """The report document: summary, CA, robots (with their findings' count) and every finding, sorted."""
    if warn_days < 0:
        raise CertificateError(
            f"warn_days {warn_days} is negative; give the number of days before expiry to warn, for example 30"
        )
    names = [r["name"] for r in robots]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CertificateError(
            f"robot names must be unique; {', '.join(duplicates)} appear more than once"
        )
    snow = servicenow or {
        "collected": False,
        "failed": False,
        "error": "no snow_cert_info result was given",
    }

    findings = _ca_findings(ca, snow, now=now, warn_days=warn_days)
    if not snow.get("collected"):
        findings.append(
            _finding(
                "servicenow_unavailable"
                if snow.get("failed")
                else "servicenow_not_checked",
                None,
                None,
                reason=snow.get("error") or "not collected",
            )
        )
    robot_rows = []
    for robot in sorted(robots, key=lambda r: r["name"]):
        own: list[dict[str, t.Any]] = []
        for role in ROLES:
            facts = robot.get(role)
            if facts and facts.get("present"):
                own += _expiry_findings(
                    facts, role=role, robot=robot["name"], now=now, warn_days=warn_days
                )
            else:
                facts = facts or {}
                own.append(
                    _finding(
                        "cert_file_unreadable"
                        if facts.get("damaged")
                        else "cert_file_missing",
                        robot["name"],
                        role,
                        label=ROLE_LABELS[role],
                        path=facts.get("path"),
                        reason=facts.get("error") or "no path given",
                    )
                )
        own += _mapping_findings(robot, snow)
        own += _windows_findings(robot)
        findings += own
        robot_rows.append(_robot_row(robot, own, snow, now=now, warn_days=warn_days))

    findings = sort_findings(findings)
    counts = {s: sum(1 for f in findings if f["severity"] == s) for s in SEVERITIES}
    fleet_problem = any(
        f["robot"] is None and f["severity"] == "error" for f in findings
    )
    problems = [f for f in findings if f["severity"] in PROBLEM_SEVERITIES]
    summary = {
        "robots": len(robot_rows),
        # A fleet-wide error (the robot CA) stops every robot, so none is in order then.
        "robots_ok": 0
        if fleet_problem
        else sum(1 for r in robot_rows if not r["problems"]),
        "robots_with_problems": sum(1 for r in robot_rows if r["problems"]),
        "findings": counts,
        "fleet_problems": sum(1 for f in problems if f["robot"] is None),
        "status": "error"
        if counts["error"]
        else ("warning" if counts["warning"] else "ok"),
        "fleet_blocked": fleet_problem,
        "expiring": sum(
            1 for f in findings if f["kind"] in ("cert_expiring", "ca_expiring")
        ),
        "expired": sum(
            1 for f in findings if f["kind"] in ("cert_expired", "ca_expired")
        ),
        "unreachable": sum(
            1
            for f in findings
            if f["kind"] in ("host_unreachable", "host_check_failed")
        ),
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "title": title,
        "now": iso(now),
        "warn_days": warn_days,
        "summary": summary,
        "ca": _cert_row(ca, now=now, warn_days=warn_days),
        "servicenow": {
            "collected": bool(snow.get("collected")),
            "error": snow.get("error"),
        },
        "robots": robot_rows,
        "findings": findings,
    }


def _cert_row(
    facts: dict[str, t.Any] | None, *, now: datetime.datetime, warn_days: int
) -> dict[str, t.Any]:
    facts = facts or {}
    not_after = parse_time(facts.get("not_after"))
    row = {
        key: facts.get(key)
        for key in (
            "path",
            "subject",
            "issuer",
            "serial",
            "thumbprint",
            "not_before",
            "not_after",
        )
    }
    row["status"] = certificate_status(facts, now=now, warn_days=warn_days)
    row["days_left"] = days_between(now, not_after) if not_after else None
    return row


def _robot_row(
    robot: dict[str, t.Any],
    own: list[dict[str, t.Any]],
    snow: dict[str, t.Any],
    *,
    now: datetime.datetime,
    warn_days: int,
) -> dict[str, t.Any]:
    windows = robot.get("windows") or {}
    kinds = {f["kind"] for f in own}
    problems = [f for f in own if f["severity"] in PROBLEM_SEVERITIES]
    if not snow.get("collected"):
        mapping = "not checked"
    elif kinds & {
        "mapping_missing",
        "mapping_other_certificate",
        "mapping_inactive",
        "snow_user_unknown",
    }:
        mapping = "problem"
    elif (robot.get("client") or {}).get("present"):
        mapping = "ok"
    else:
        mapping = "not checked"
    return {
        "name": robot["name"],
        "snow_user": robot.get("snow_user"),
        "windows_account": robot.get("windows_account"),
        "certificates": {
            role: _cert_row(robot.get(role), now=now, warn_days=warn_days)
            for role in ROLES
        },
        "servicenow_mapping": mapping,
        "windows": {
            "status": windows.get("status") or "not_collected",
            "message": windows.get("message"),
        },
        "problems": len(problems),
        "notes": len(own) - len(problems),
        "worst": min(
            (f["severity"] for f in problems),
            key=SEVERITY_RANK.__getitem__,
            default="ok",
        ),
    }


def render_json(report: dict[str, t.Any]) -> bytes:
    """Stable bytes for the document: sorted keys, two-space indent, trailing newline."""
    return (
        json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    ).encode("utf-8")


# Inputs from other modules' returns ---------------------------------------------------------

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "robots": {
        "type": "list",
        "elements": "dict",
        "required": True,
        "options": {
            "name": {"type": "str", "required": True},
            "snow_user": {"type": "str"},
            "windows_account": {"type": "str"},
            "client_cert_path": {"type": "path"},
            "code_signing_cert_path": {"type": "path"},
            "windows_host": {"type": "bool", "default": True},
            "windows_facts": {"type": "raw"},
        },
    },
    "ca_cert_path": {"type": "path"},
    "servicenow_facts": {"type": "raw"},
    "warn_days": {"type": "int", "default": 30},
    "now": {"type": "str"},
    "json_path": {"type": "path"},
    "html_path": {"type": "path"},
    "title": {"type": "str", "default": "Robot certificate audit"},
}


def _truthy(value: t.Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes", "active")


def _type_name(value: t.Any) -> str:
    """A YAML user's word for VALUE's type; ansible-core hands over tagged subclasses of the builtins."""
    if value is None:
        return "null"
    for kind, name in (
        (bool, "boolean"),
        (int, "number"),
        (float, "number"),
        (str, "string"),
        (bytes, "string"),
        (dict, "dict"),
        (list, "list"),
        (tuple, "list"),
    ):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _first_line(value: t.Any, fallback: str) -> str:
    lines = str(value or "").strip().splitlines()
    # ansible-core prefixes connection errors with "Task failed: ", which says nothing here.
    return lines[0].removeprefix("Task failed: ") if lines else fallback


def _registered_state(
    result: dict[str, t.Any], success_keys: tuple[str, ...]
) -> str | None:
    """'skipped', 'unreachable' or 'failed' for a registered result that did not succeed, else None.

    failed_when: false clears C(failed) on a failed run, but its result keeps C(msg) and lacks the keys
    a successful run returns, so that combination is a failure too.
    """
    if result.get("skipped"):
        return "skipped"
    if result.get("unreachable"):
        return "unreachable"
    if result.get("failed"):
        return "failed"
    if "msg" in result and not any(key in result for key in success_keys):
        return "failed"
    return None


def _check_records(value: t.Any, option: str, elements: str) -> list[dict[str, t.Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise CertificateError(
            f"{option} must be a list of {elements} (dicts) as the module returns it, got {_type_name(value)}; "
            "pass the registered result unchanged"
        )
    return value


_SNOW_SHAPE = (
    "the registered result of snowrpa.robot_certs.snow_cert_info (a dict with the lists 'cas' and 'mappings'), "
    "or omit it to leave ServiceNow out"
)


def servicenow_from_info(result: t.Any) -> dict[str, t.Any]:
    """ServiceNow facts from a registered snowrpa.robot_certs.snow_cert_info result.

    None or an empty dict means ServiceNow was left out; a value of another shape is an error, so that a
    wrong variable never reads as "no CA record" or "no mapping".
    """
    if result is None or result == {}:
        return {
            "collected": False,
            "failed": False,
            "error": "no snow_cert_info result was given",
        }
    if not isinstance(result, dict):
        raise CertificateError(
            f"servicenow_facts must be {_SNOW_SHAPE}; got a {_type_name(result)}"
        )
    state = _registered_state(result, ("cas", "mappings"))
    if state == "skipped":
        return {
            "collected": False,
            "failed": False,
            "error": "snow_cert_info was skipped",
        }
    if state:
        return {
            "collected": False,
            "failed": True,
            "error": _first_line(result.get("msg"), f"snow_cert_info {state}"),
        }
    if "cas" not in result or "mappings" not in result:
        keys = ", ".join(sorted(map(str, result))) or "none"
        raise CertificateError(
            f"servicenow_facts must be {_SNOW_SHAPE}; got a dict with the keys {keys}"
        )
    cas = _check_records(result["cas"], "servicenow_facts.cas", "CA records")
    users = _check_records(
        result["mappings"], "servicenow_facts.mappings", "mapping records"
    )
    for option, records in (("cas", cas), ("mappings", users)):
        for record in records:
            if "certificates" in record and record["certificates"] is not None:
                _check_records(
                    record["certificates"],
                    f"servicenow_facts.{option}[].certificates",
                    "certificates",
                )
    return {
        "collected": True,
        "failed": False,
        "error": None,
        "cas": [
            {
                "sys_id": r.get("sys_id"),
                "name": r.get("name"),
                "active": _truthy(r.get("active")),
                "publish_status": str(r.get("publish_status") or "").lower() or None,
                # A CA record may hold the whole chain; any of its certificates can be ours.
                "thumbprints": [
                    c.get("thumbprint")
                    for c in r.get("certificates") or []
                    if c.get("thumbprint")
                ],
                "thumbprint": r.get("thumbprint"),
                "subject": r.get("subject"),
                "issuer": r.get("issuer"),
                "valid_to": r.get("valid_to"),
            }
            for r in cas
        ],
        "mappings": [
            {
                "sys_id": r.get("sys_id"),
                "name": r.get("name"),
                "user_name": r.get("user_name"),
                "active": _truthy(r.get("active")),
                "thumbprint": r.get("thumbprint"),
                "subject": r.get("subject"),
                "issuer": r.get("issuer"),
                "valid_to": r.get("valid_to"),
            }
            for r in users
        ],
    }


def _store_role(store: t.Any) -> str | None:
    """Which robot certificate a store holds: LocalMachine\\My the client one, CurrentUser\\My code signing."""
    return {"localmachine\\my": "client", "currentuser\\my": "code_signing"}.get(
        str(store or "").lower()
    )


def _check_windows_runs(result: t.Any, option: str) -> list[dict[str, t.Any]]:
    """The registered win_cert_info results in RESULT (one, or a list of them), checked for their shape."""
    shape = (
        "the registered result of snowrpa.robot_certs.win_cert_info (a dict with 'store' and the list "
        "'certificates'), a list of such results, or omitted"
    )
    runs = result if isinstance(result, list) else [result]
    for run_result in runs:
        if run_result is None or run_result == {}:
            continue
        if not isinstance(run_result, dict):
            raise CertificateError(
                f"{option} must be {shape}; got a {_type_name(run_result)}"
            )
        if _registered_state(run_result, ("store", "certificates")):
            continue
        if "store" not in run_result or "certificates" not in run_result:
            keys = ", ".join(sorted(map(str, run_result))) or "none"
            raise CertificateError(
                f"{option} must be {shape}; got a dict with the keys {keys}"
            )
        _check_records(
            run_result["certificates"], f"{option}.certificates", "certificates"
        )
    return [r for r in runs if isinstance(r, dict) and r]


def windows_from_info(
    result: t.Any, *, windows_host: bool, option: str = "windows_facts"
) -> dict[str, t.Any]:
    """Windows facts of one robot from its registered win_cert_info result, or a list of them (one per store).

    The worst outcome wins: one unreachable run makes the host unreachable, one failed run a failed check.
    A value of another shape is an error (OPTION names it), even for a robot without a Windows host.
    """
    runs = _check_windows_runs(result, option)
    if not windows_host:
        return {
            "status": "skipped",
            "message": "the robot is declared without a Windows host",
        }
    states = {id(r): _registered_state(r, ("store", "certificates")) for r in runs}
    ran = [r for r in runs if states[id(r)] != "skipped"]
    if not ran:
        return {"status": "not_collected", "message": None}
    for state, fallback in (
        ("unreachable", "host unreachable"),
        ("failed", "win_cert_info failed"),
    ):
        bad = [r for r in ran if states[id(r)] == state]
        if bad:
            return {
                "status": state,
                "message": _first_line(bad[0].get("msg"), fallback),
            }
    certificates = []
    checked: set[str] = set()
    for run_result in ran:
        role = _store_role(run_result.get("store"))
        if role:
            checked.add(role)
        for cert in run_result.get("certificates") or []:
            certificates.append(
                {
                    "role": cert.get("role") or role,
                    "thumbprint": normalise_thumbprint(cert.get("thumbprint")),
                    "subject": cert.get("subject"),
                    # HasPrivateKey only says a key property exists, not that the key opens; key_usable
                    # says it opened and signed.
                    "has_private_key": cert.get(
                        "key_usable", cert.get("has_private_key")
                    ),
                    "key_acl": cert.get("key_acl"),
                    "key_error": str(cert.get("key_error") or "").strip() or None,
                }
            )
    checked.update(c["role"] for c in certificates if c["role"])
    return {
        "status": "checked",
        "message": None,
        "certificates": certificates,
        "checked_roles": [r for r in ROLES if r in checked],
    }


def collect(params: dict[str, t.Any]) -> dict[str, t.Any]:
    """The report document for the module options PARAMS; reads the controller's certificate files."""
    robots = []
    for robot in params["robots"]:
        robots.append(
            {
                "name": robot["name"],
                "snow_user": robot.get("snow_user"),
                "windows_account": robot.get("windows_account"),
                "client": load_certificate(
                    robot.get("client_cert_path"), what="client certificate"
                ),
                "code_signing": load_certificate(
                    robot.get("code_signing_cert_path"), what="code-signing certificate"
                ),
                "windows": windows_from_info(
                    robot.get("windows_facts"),
                    windows_host=robot.get("windows_host", True),
                    option=f"robots[{robot['name']}].windows_facts",
                ),
            }
        )
    ca = load_certificate(params.get("ca_cert_path"), what="CA certificate")
    return build_report(
        robots=robots,
        ca=ca,
        servicenow=servicenow_from_info(params.get("servicenow_facts")),
        now=parse_now(params.get("now")),
        warn_days=params.get("warn_days", 30),
        title=params.get("title") or "Robot certificate audit",
    )


def run(
    params: dict[str, t.Any], *, check_mode: bool
) -> tuple[bool, dict[str, t.Any], dict[str, t.Any], list[str]]:
    """Build the report and write the JSON and HTML files that differ (not in check mode).

    Returns (changed, result, diff, warnings) as the controller action base expects.
    """
    # Imported here: the HTML renderer imports this file for its date helpers.
    from ansible_collections.snowrpa.robot_certs.plugins.module_utils._report_html import (
        render_html,
    )

    report = collect(params)
    outputs = {"json_path": render_json(report), "html_path": render_html(report)}
    writes = [
        PlannedWrite(params[key], data, PUBLIC_MODE)
        for key, data in outputs.items()
        if params.get(key)
    ]
    names = {params[key]: key for key in outputs if params.get(key)}
    if len(names) != len(writes):
        raise CertificateError(
            "json_path and html_path are the same file; give each report its own path"
        )
    for write in writes:
        check_writable(write.path, what=names[write.path])
    current = {w.path: read_optional(w.path, what=names[w.path]) for w in writes}
    changed = any(needs_write(w.path, w.data, w.mode, current[w.path]) for w in writes)
    if changed and not check_mode:
        apply_writes(writes, current, what=names)

    diff: dict[str, t.Any] = {}
    if params.get("json_path"):
        before = current[params["json_path"]]
        diff = {
            "before_header": params["json_path"],
            "after_header": params["json_path"],
            "before": before.decode("utf-8", "replace") if before else "",
            "after": outputs["json_path"].decode("utf-8"),
        }
    result = {
        "report": report,
        "summary": report["summary"],
        "findings": report["findings"],
        "json_path": params.get("json_path"),
        "html_path": params.get("html_path"),
    }
    warnings = []
    if not writes:
        warnings.append(
            "neither json_path nor html_path is set, so the report is only returned, not written"
        )
    return changed, result, diff, warnings


__all__ = (
    "ARGUMENT_SPEC",
    "FULL_CONTROL_MASK",
    "KINDS",
    "PROBLEM_SEVERITIES",
    "READ_MASK",
    "ROLES",
    "SCHEMA_VERSION",
    "SEVERITIES",
    "WINDOWS_STATES",
    "access_of",
    "build_report",
    "collect",
    "certificate_status",
    "days_between",
    "iso",
    "load_certificate",
    "normal_mask",
    "normalise_thumbprint",
    "parse_now",
    "parse_time",
    "render_json",
    "run",
    "servicenow_from_info",
    "sort_findings",
    "windows_from_info",
)
