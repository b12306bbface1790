"""The fleet audit findings: one seeded problem of each kind, from real certificate files."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import typing as t
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import _report
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    CertificateError,
)

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)


class Pki:
    """Writes a robot CA and leaves issued by it, as PEM files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Robot CA")])
        self.ca_path = self.write(
            "ca", self.ca_name, self.ca_name, NOW - 100 * DAY, NOW + 3000 * DAY
        )

    def write(
        self,
        stem: str,
        subject: x509.Name,
        issuer: x509.Name,
        not_before: datetime.datetime,
        not_after: datetime.datetime,
    ) -> str:
        key = (
            self.ca_key
            if subject == issuer
            else ec.generate_private_key(ec.SECP256R1())
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .sign(self.ca_key, hashes.SHA256())
        )
        path = self.folder / f"{stem}.pem"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return str(path)

    def leaf(self, stem: str, *, days_left: int, cn: str | None = None) -> str:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn or stem)])
        return self.write(
            stem, subject, self.ca_name, NOW - 300 * DAY, NOW + days_left * DAY
        )


def openssl_facts(path: str) -> dict[str, str]:
    """Thumbprint and expiry as openssl reports them, to check our reading of the file."""
    out = subprocess.run(
        [
            "openssl",
            "x509",
            "-in",
            path,
            "-noout",
            "-fingerprint",
            "-sha1",
            "-enddate",
            "-dateopt",
            "iso_8601",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fields = dict(line.split("=", 1) for line in out.splitlines())
    thumb = next(v for k, v in fields.items() if "Fingerprint" in k)
    return {
        "thumbprint": thumb.replace(":", ""),
        "not_after": fields["notAfter"].replace(" ", "T"),
    }


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def robot(
    pki: Pki, name: str, *, client_days: int = 300, signing_days: int = 300
) -> dict[str, t.Any]:
    return {
        "name": name,
        "snow_user": f"svc.{name}",
        "windows_account": f"CORP\\svc-{name}",
        "client": _report.load_certificate(
            pki.leaf(f"{name}-client", days_left=client_days, cn=name),
            what="client certificate",
        ),
        "code_signing": _report.load_certificate(
            pki.leaf(f"{name}-sign", days_left=signing_days, cn=f"{name} code signing"),
            what="code-signing certificate",
        ),
        "windows": {"status": "skipped"},
    }


def ace(account: str, rights: str, mask: str, kind: str = "allow") -> dict[str, t.Any]:
    """One key ACL entry as win_cert_info returns it."""
    return {
        "sid": "S-1-5-21-1-2-3-1001",
        "account": account,
        "type": kind,
        "rights": rights,
        "mask": mask,
        "inherited": False,
    }


def win_cert_info_results(
    entry: dict[str, t.Any], *, acl: list[dict[str, t.Any]] | None = None
) -> list[dict[str, t.Any]]:
    """The two win_cert_info results of a robot whose certificates are installed (machine store, then user store)."""
    default_acl = [
        ace(entry["windows_account"], "read", "0x80120089"),
        ace("NT AUTHORITY\\SYSTEM", "full_control", "0xD01F01FF"),
    ]
    client = entry["client"]
    signing = entry["code_signing"]
    return [
        {
            "changed": False,
            "store": "LocalMachine\\My",
            "exists": True,
            "certificates": [
                {
                    "thumbprint": client.get("thumbprint"),
                    "subject": client.get("subject"),
                    "has_private_key": True,
                    "key_usable": True,
                    "key_acl": default_acl if acl is None else acl,
                }
            ],
        },
        {
            "changed": False,
            "store": "CurrentUser\\My",
            "exists": True,
            "certificates": [
                {
                    "thumbprint": signing["thumbprint"],
                    "subject": signing["subject"],
                    "has_private_key": True,
                    "key_usable": True,
                    "key_acl": None,
                }
            ],
        },
    ]


def installed(
    entry: dict[str, t.Any], *, acl: list[dict[str, t.Any]] | None = None
) -> dict[str, t.Any]:
    """Windows facts where both certificates are installed and the account has Read."""
    return _report.windows_from_info(
        win_cert_info_results(entry, acl=acl), windows_host=True
    )


def healthy_snow(
    ca: dict[str, t.Any], robots: list[dict[str, t.Any]]
) -> dict[str, t.Any]:
    return {
        "collected": True,
        "cas": [
            {
                "sys_id": "c" * 32,
                "name": "Robot CA",
                "active": True,
                "publish_status": "exists",
                "thumbprint": ca["thumbprint"],
            }
        ],
        "mappings": [
            {
                "sys_id": f"{i:032x}",
                "name": r["name"],
                "user_name": r["snow_user"],
                "active": True,
                "thumbprint": r["client"].get("thumbprint"),
            }
            for i, r in enumerate(robots)
        ],
    }


def kinds(report: dict[str, t.Any]) -> list[tuple[str | None, str]]:
    return [(f["robot"], f["kind"]) for f in report["findings"]]


def test_certificate_facts_agree_with_openssl(pki: Pki) -> None:
    path = pki.leaf("robot01", days_left=42)

    facts = _report.load_certificate(path, what="client certificate")

    expected = openssl_facts(path)
    assert facts["present"] is True
    assert facts["thumbprint"] == expected["thumbprint"]
    assert facts["not_after"] == expected["not_after"]
    assert facts["subject"] == "CN=robot01"


def test_healthy_fleet_has_no_findings(pki: Pki) -> None:
    robots = [robot(pki, "robot01"), robot(pki, "robot02")]
    for entry in robots:
        entry["windows"] = installed(entry)
    ca = _report.load_certificate(pki.ca_path, what="CA certificate")

    report = _report.build_report(
        robots=robots, ca=ca, servicenow=healthy_snow(ca, robots), now=NOW, warn_days=30
    )

    assert report["findings"] == []
    assert report["summary"]["status"] == "ok"
    assert report["summary"]["robots_ok"] == 2
    assert [r["servicenow_mapping"] for r in report["robots"]] == ["ok", "ok"]


def test_every_kind_of_problem_is_found(pki: Pki, tmp_path: Path) -> None:
    ok = robot(pki, "robot01")
    expiring = robot(pki, "robot02", client_days=10)
    expired = robot(pki, "robot03", signing_days=-3)
    no_mapping = robot(pki, "robot04")
    inactive = robot(pki, "robot05")
    other_cert = robot(pki, "robot06")
    no_read = robot(pki, "robot07")
    full_control = robot(pki, "robot08")
    differs = robot(pki, "robot09")
    not_installed = robot(pki, "robot10")
    unreachable = robot(pki, "robot11")
    missing_file = robot(pki, "robot12")
    missing_file["client"] = _report.load_certificate(
        str(tmp_path / "gone.pem"), what="client certificate"
    )
    robots = [
        ok,
        expiring,
        expired,
        no_mapping,
        inactive,
        other_cert,
        no_read,
        full_control,
        differs,
        not_installed,
        unreachable,
        missing_file,
    ]
    for entry in robots:
        entry["windows"] = installed(entry)
    no_read["windows"] = installed(
        no_read, acl=[{"account": "BUILTIN\\Administrators", "rights": ["FullControl"]}]
    )
    full_control["windows"] = installed(
        full_control, acl=[{"account": "svc-robot08", "mask": "0xD01F01FF"}]
    )
    replaced = robot(pki, "robot09-old", client_days=200)
    differs["windows"]["certificates"][0].update(
        thumbprint=replaced["client"]["thumbprint"], subject="CN=robot09"
    )
    not_installed["windows"]["certificates"] = [
        {"role": "client", "thumbprint": "AB" * 20, "subject": "CN=winrm.example"}
    ]
    unreachable["windows"] = _report.windows_from_info(
        {
            "unreachable": True,
            "msg": "ntlm: HTTPConnectionPool(host='robot11', port=5985): timed out\nmore",
        },
        windows_host=True,
    )
    ca = _report.load_certificate(pki.ca_path, what="CA certificate")
    snow = healthy_snow(ca, robots)
    snow["mappings"] = [m for m in snow["mappings"] if m["user_name"] != "svc.robot04"]
    next(m for m in snow["mappings"] if m["user_name"] == "svc.robot05")["active"] = (
        False
    )
    next(m for m in snow["mappings"] if m["user_name"] == "svc.robot06")[
        "thumbprint"
    ] = "CD" * 20
    snow["cas"][0]["publish_status"] = "pending"

    report = _report.build_report(
        robots=robots, ca=ca, servicenow=snow, now=NOW, warn_days=30
    )

    assert kinds(report) == [
        (None, "ca_not_published"),
        ("robot03", "cert_expired"),
        ("robot04", "mapping_missing"),
        ("robot05", "mapping_inactive"),
        ("robot06", "mapping_other_certificate"),
        ("robot07", "key_acl_no_read"),
        ("robot09", "windows_cert_differs"),
        ("robot10", "windows_cert_missing"),
        ("robot10", "windows_cert_missing"),
        ("robot11", "host_unreachable"),
        ("robot12", "cert_file_missing"),
        ("robot02", "cert_expiring"),
        ("robot08", "key_acl_full_control"),
    ]
    by_kind = {f["kind"]: f for f in report["findings"]}
    assert (
        by_kind["cert_expiring"]["message"]
        == f"The client certificate expires on {(NOW + 10 * DAY).date()}, in 10 days (warning window: 30 days)."
    )
    assert "3 days ago" in by_kind["cert_expired"]["message"]
    assert "'svc.robot04'" in by_kind["mapping_missing"]["message"]
    assert "publish status 'pending'" in by_kind["ca_not_published"]["message"]
    assert (
        replaced["client"]["thumbprint"] in by_kind["windows_cert_differs"]["message"]
    )
    assert (
        "timed out" in by_kind["host_unreachable"]["message"]
        and "more" not in by_kind["host_unreachable"]["message"]
    )
    assert "does not exist" in by_kind["cert_file_missing"]["message"]
    assert all(f["action"] and f["title"] for f in report["findings"])
    summary = report["summary"]
    assert summary["findings"] == {"error": 11, "warning": 2, "info": 0}
    assert (
        summary["robots"],
        summary["robots_ok"],
        summary["expiring"],
        summary["expired"],
        summary["unreachable"],
    ) == (12, 0, 1, 1, 1)
    # The unpublished CA stops every robot: none is in order, though robot01 has no problem of its own.
    assert summary["fleet_blocked"] is True
    assert summary["robots_with_problems"] == 11


def test_ca_problems(pki: Pki) -> None:
    robots = [robot(pki, "robot01")]
    ca = _report.load_certificate(pki.ca_path, what="CA certificate")
    snow = healthy_snow(ca, robots)

    snow["cas"][0]["active"] = False
    inactive = _report.build_report(
        robots=robots, ca=ca, servicenow=snow, now=NOW, warn_days=30
    )
    snow["cas"] = []
    absent = _report.build_report(
        robots=robots, ca=ca, servicenow=snow, now=NOW, warn_days=30
    )
    late = _report.build_report(
        robots=robots,
        ca=ca,
        servicenow=healthy_snow(ca, robots),
        now=NOW + 2990 * DAY,
        warn_days=30,
    )

    assert kinds(inactive) == [(None, "ca_inactive")]
    assert kinds(absent) == [(None, "ca_not_registered")]
    assert (None, "ca_expiring") in kinds(late)
    assert ("robot01", "cert_expired") in kinds(late)


def test_servicenow_records_without_thumbprint_match_by_subject_issuer_and_expiry(
    pki: Pki,
) -> None:
    entry = robot(pki, "robot01")
    ca = _report.load_certificate(pki.ca_path, what="CA certificate")
    stamp = entry["client"]["not_after"].replace("T", " ").rstrip("Z")
    info = {
        "cas": [
            {
                "name": "Robot CA",
                "active": "true",
                "publish_status": "exists",
                "subject": "CN=Robot CA",
                "valid_to": ca["not_after"].replace("T", " ").rstrip("Z"),
            }
        ],
        "mappings": [
            {
                "name": "robot01",
                "user_name": "svc.robot01",
                "active": "true",
                "subject": "CN=robot01",
                "issuer": "CN=Robot CA",
                "valid_to": stamp,
            }
        ],
    }

    report = _report.build_report(
        robots=[entry],
        ca=ca,
        servicenow=_report.servicenow_from_info(info),
        now=NOW,
        warn_days=30,
    )

    assert report["findings"] == []


def test_acl_rules() -> None:
    read, full = (
        {"read": True, "full_control": False},
        {"read": True, "full_control": True},
    )
    nothing = {"read": False, "full_control": False}

    assert (
        _report.access_of([ace("CORP\\svc", "read", "0x80120089")], "corp\\SVC") == read
    )
    # Generic bits count as the rights they map to; without a mask the rights name decides.
    assert (
        _report.access_of([ace("svc", "full_control", "0x10000000")], "CORP\\svc")
        == full
    )
    assert (
        _report.access_of([ace("CORP\\svc", "full_control", "0x001F01FF")], "CORP\\svc")
        == full
    )
    assert (
        _report.access_of([{"account": "CORP\\svc", "rights": "read"}], "CORP\\svc")
        == read
    )
    # Two entries for the account add up; a special right alone is not Read.
    assert (
        _report.access_of([ace("CORP\\svc", "special", "0x00020000")], "CORP\\svc")
        == nothing
    )
    assert (
        _report.access_of(
            [
                ace("CORP\\svc", "special", "0x00020000"),
                ace("CORP\\svc", "special", "0x00100089"),
            ],
            "CORP\\svc",
        )
        == read
    )
    # Another domain's account of the same name, and deny entries, give nothing.
    assert (
        _report.access_of([ace("OTHER\\svc", "read", "0x80120089")], "CORP\\svc")
        == nothing
    )
    assert (
        _report.access_of([ace("CORP\\svc", "read", "0x80120089", "deny")], "CORP\\svc")
        == nothing
    )
    assert _report.access_of(None, "CORP\\svc") is None


def test_windows_facts_states(pki: Pki) -> None:
    entry = robot(pki, "robot01")
    machine, user = win_cert_info_results(entry)

    assert (
        _report.windows_from_info([machine, user], windows_host=False)["status"]
        == "skipped"
    )
    assert (
        _report.windows_from_info(None, windows_host=True)["status"] == "not_collected"
    )
    assert (
        _report.windows_from_info(
            [{"skipped": True}, {"skipped": True}], windows_host=True
        )["status"]
        == "not_collected"
    )
    failed = _report.windows_from_info(
        [machine, {"failed": True, "msg": "become is required\ntrace"}],
        windows_host=True,
    )
    assert failed == {"status": "failed", "message": "become is required"}
    gone = _report.windows_from_info(
        [{"unreachable": True, "msg": "Task failed: timed out"}, {"skipped": True}],
        windows_host=True,
    )
    assert gone == {"status": "unreachable", "message": "timed out"}
    checked = _report.windows_from_info([machine, user], windows_host=True)
    assert [(c["role"], c["thumbprint"]) for c in checked["certificates"]] == [
        ("client", entry["client"]["thumbprint"]),
        ("code_signing", entry["code_signing"]["thumbprint"]),
    ]


def test_a_store_not_read_is_not_a_missing_certificate(pki: Pki) -> None:
    entry = robot(pki, "robot01")
    machine, _user = win_cert_info_results(entry)
    skipped = {
        "skipped": True,
        "changed": False,
        "false_condition": "robot_windows_account is defined",
    }
    entry["windows"] = _report.windows_from_info([machine, skipped], windows_host=True)
    other = robot(pki, "robot02")
    machine2, user2 = win_cert_info_results(other)
    user2["certificates"] = []
    other["windows"] = _report.windows_from_info([machine2, user2], windows_host=True)

    report = _report.build_report(
        robots=[entry, other], ca=None, servicenow=None, now=NOW, warn_days=30
    )

    assert entry["windows"]["checked_roles"] == ["client"]
    assert [(r, k) for r, k in kinds(report) if r] == [
        ("robot02", "windows_cert_missing")
    ]
    missing = next(f for f in report["findings"] if f["kind"] == "windows_cert_missing")
    assert (
        "CurrentUser\\My" in missing["message"]
        and missing["certificate"] == "code_signing"
    )


def test_certificate_without_a_usable_key_on_the_robot(pki: Pki) -> None:
    entry = robot(pki, "robot01")
    machine, user = win_cert_info_results(entry)
    machine["certificates"][0].update(
        has_private_key=True,
        key_usable=False,
        key_error="the private key of the certificate does not exist",
    )
    entry["windows"] = _report.windows_from_info([machine, user], windows_host=True)

    report = _report.build_report(
        robots=[entry], ca=None, servicenow=None, now=NOW, warn_days=30
    )

    missing = next(f for f in report["findings"] if f["kind"] == "windows_key_missing")
    assert missing["robot"] == "robot01"
    assert missing["message"].endswith(
        "without a usable private key (the private key of the certificate does not exist)."
    )


def test_ca_record_holding_the_chain_matches_by_any_certificate(pki: Pki) -> None:
    entry = robot(pki, "robot01")
    ca = _report.load_certificate(pki.ca_path, what="CA certificate")
    record = {
        "name": "Robot CA",
        "active": True,
        "publish_status": "exists",
        "thumbprint": "EF" * 20,
        "certificates": [{"thumbprint": "EF" * 20}, {"thumbprint": ca["thumbprint"]}],
    }
    mapping = {
        "name": "robot01",
        "user_name": "svc.robot01",
        "active": True,
        "thumbprint": entry["client"]["thumbprint"],
    }

    snow = _report.servicenow_from_info(
        {"changed": False, "cas": [record], "mappings": [mapping]}
    )
    report = _report.build_report(
        robots=[entry], ca=ca, servicenow=snow, now=NOW, warn_days=30
    )

    assert report["findings"] == []


def test_bad_input_is_one_clear_error(pki: Pki) -> None:
    entry = robot(pki, "robot01")

    with pytest.raises(CertificateError, match="robot01 appear more than once"):
        _report.build_report(
            robots=[entry, dict(entry)], ca=None, servicenow=None, now=NOW, warn_days=30
        )
    with pytest.raises(CertificateError, match="warn_days -1 is negative"):
        _report.build_report(
            robots=[entry], ca=None, servicenow=None, now=NOW, warn_days=-1
        )
    with pytest.raises(CertificateError, match="'yesterday' is not an ISO 8601 date"):
        _report.parse_now("yesterday")


def test_report_date_defaults_to_the_day() -> None:
    moment = datetime.datetime(2026, 6, 1, 17, 45, 3, tzinfo=datetime.UTC)

    assert _report.parse_now(None, default=moment) == datetime.datetime(
        2026, 6, 1, tzinfo=datetime.UTC
    )
    assert _report.parse_now("2026-06-01T12:00:00+02:00") == datetime.datetime(
        2026, 6, 1, 10, tzinfo=datetime.UTC
    )


def params(pki: Pki, tmp_path: Path) -> dict[str, t.Any]:
    return {
        "robots": [
            {
                "name": "robot01",
                "snow_user": "svc.robot01",
                "windows_account": "CORP\\svc-robot01",
                "client_cert_path": pki.leaf(
                    "robot01-client", days_left=12, cn="robot01"
                ),
                "code_signing_cert_path": pki.leaf("robot01-sign", days_left=200),
                "windows_host": False,
                "windows_facts": None,
            }
        ],
        "ca_cert_path": pki.ca_path,
        "servicenow_facts": {"failed": True, "msg": "HTTP Error 401: Unauthorized"},
        "warn_days": 30,
        "now": NOW.isoformat(),
        "json_path": str(tmp_path / "out" / "report.json"),
        "html_path": str(tmp_path / "out" / "report.html"),
        "title": "Robot certificate audit",
    }


def test_run_writes_once_and_check_mode_writes_nothing(
    pki: Pki, tmp_path: Path
) -> None:
    options = params(pki, tmp_path)

    planned, _result, planned_diff, _warnings = _report.run(options, check_mode=True)
    assert planned is True
    assert planned_diff["before"] == "" and '"cert_expiring"' in planned_diff["after"]
    assert not (tmp_path / "out").exists()

    first, result, _diff, warnings = _report.run(options, check_mode=False)
    written = (tmp_path / "out" / "report.json").read_bytes()
    stamp = os.stat(tmp_path / "out" / "report.json").st_mtime_ns
    second, _result, diff, _warnings = _report.run(options, check_mode=False)

    assert first is True and second is False and warnings == []
    assert os.stat(tmp_path / "out" / "report.json").st_mtime_ns == stamp
    assert oct(os.stat(tmp_path / "out" / "report.html").st_mode & 0o777) == "0o644"
    document = json.loads(written)
    assert document == result["report"]
    assert [f["kind"] for f in document["findings"]] == [
        "servicenow_unavailable",
        "cert_expiring",
    ]
    assert "401" in document["findings"][0]["message"]
    assert diff["before"] == diff["after"]


def test_run_without_output_paths_only_returns(pki: Pki, tmp_path: Path) -> None:
    options = params(pki, tmp_path)
    options.update(json_path=None, html_path=None)

    changed, result, _diff, warnings = _report.run(options, check_mode=False)

    assert changed is False
    assert result["summary"]["robots"] == 1
    assert warnings == [
        "neither json_path nor html_path is set, so the report is only returned, not written"
    ]
    assert not (tmp_path / "out").exists()


def test_run_refuses_one_path_for_both(pki: Pki, tmp_path: Path) -> None:
    options = params(pki, tmp_path)
    options["html_path"] = options["json_path"]

    with pytest.raises(
        CertificateError, match="json_path and html_path are the same file"
    ):
        _report.run(options, check_mode=False)
    assert not (tmp_path / "out").exists()


REPO_ROOT = Path(__file__).resolve().parents[4]


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("servicenow_facts", {"foo": 1}, r"^servicenow_facts .*'cas'.*'mappings'"),
        ("servicenow_facts", "garbage", r"^servicenow_facts .*got a string"),
        ("servicenow_facts", {"cas": "x", "mappings": []}, r"^servicenow_facts\.cas "),
        (
            "windows_facts",
            "garbage",
            r"^robots\[robot01\]\.windows_facts .*got a string",
        ),
        ("windows_facts", {"foo": 1}, r"^robots\[robot01\]\.windows_facts .*'store'"),
        (
            "windows_facts",
            [{"store": "LocalMachine\\My", "certificates": [7]}],
            "certificates",
        ),
    ],
)
def test_facts_of_the_wrong_shape_fail_with_one_line(
    pki: Pki, tmp_path: Path, option: str, value: t.Any, expected: str
) -> None:
    options = params(pki, tmp_path)
    if option == "windows_facts":
        options["robots"][0].update(windows_host=True, windows_facts=value)
    else:
        options[option] = value

    with pytest.raises(CertificateError, match=expected) as caught:
        _report.run(options, check_mode=False)

    assert "\n" not in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_omitted_facts_mean_not_checked_never_a_problem(
    pki: Pki, tmp_path: Path
) -> None:
    options = params(pki, tmp_path)
    options["robots"][0].update(
        windows_host=True,
        windows_facts=None,
        client_cert_path=pki.leaf("robot01-ok", days_left=300, cn="robot01"),
    )
    options["servicenow_facts"] = None

    _changed, result, _diff, _warnings = _report.run(options, check_mode=False)

    report = result["report"]
    assert [(f["severity"], f["kind"]) for f in report["findings"]] == [
        ("info", "servicenow_not_checked"),
        ("info", "windows_not_checked"),
    ]
    assert report["summary"]["status"] == "ok"
    assert report["summary"]["findings"] == {"error": 0, "warning": 0, "info": 2}
    assert report["summary"]["robots_ok"] == 1
    assert report["robots"][0]["problems"] == 0
    assert report["robots"][0]["servicenow_mapping"] == "not checked"
    assert report["robots"][0]["windows"]["status"] == "not_collected"


@pytest.mark.parametrize("skipped", [{"skipped": True, "changed": False}, {}])
def test_skipped_servicenow_is_not_checked(
    pki: Pki, tmp_path: Path, skipped: dict[str, t.Any]
) -> None:
    options = params(pki, tmp_path)
    options["servicenow_facts"] = skipped

    _changed, result, _diff, _warnings = _report.run(options, check_mode=True)

    found = [f["kind"] for f in result["findings"]]
    assert "servicenow_not_checked" in found
    assert "ca_not_registered" not in found and "mapping_missing" not in found


def test_failure_registered_with_failed_when_false_is_not_a_record_problem(
    pki: Pki, tmp_path: Path
) -> None:
    """failed_when: false clears 'failed' but the result keeps msg and lacks the success keys."""
    options = params(pki, tmp_path)
    options["servicenow_facts"] = {
        "changed": False,
        "failed": False,
        "failed_when_result": False,
        "msg": "HTTP Error 401: Unauthorized",
    }
    options["robots"][0].update(
        windows_host=True,
        windows_facts=[
            {
                "changed": False,
                "failed": False,
                "failed_when_result": False,
                "msg": "become failed",
            },
            {"skipped": True},
        ],
    )

    _changed, result, _diff, _warnings = _report.run(options, check_mode=True)

    found = {f["kind"]: f for f in result["findings"]}
    assert set(found) == {
        "servicenow_unavailable",
        "host_check_failed",
        "cert_expiring",
    }
    assert "401" in found["servicenow_unavailable"]["message"]
    assert "become failed" in found["host_check_failed"]["message"]


def test_damaged_certificate_file_has_its_own_finding(pki: Pki, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.pem"
    damaged.write_text(
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"
    )
    entry = robot(pki, "robot01")
    entry["client"] = _report.load_certificate(str(damaged), what="client certificate")
    entry["code_signing"] = _report.load_certificate(
        str(tmp_path / "gone.pem"), what="code-signing certificate"
    )
    ca = _report.load_certificate(str(damaged), what="CA certificate")

    report = _report.build_report(
        robots=[entry], ca=ca, servicenow=None, now=NOW, warn_days=30
    )

    by_kind = {f["kind"]: f for f in report["findings"]}
    assert (
        by_kind["cert_file_unreadable"]["title"]
        == "Certificate file unreadable or damaged"
    )
    assert str(damaged) in by_kind["cert_file_unreadable"]["message"]
    assert str(damaged) in by_kind["cert_file_unreadable"]["action"]
    assert by_kind["cert_file_missing"]["certificate"] == "code_signing"
    assert "does not exist" in by_kind["cert_file_missing"]["message"]
    assert (
        by_kind["ca_file_unreadable"]["title"] == "Robot CA file unreadable or damaged"
    )
    assert "ca_file_missing" not in by_kind
    # openssl agrees the file is not a certificate.
    assert (
        subprocess.run(
            ["openssl", "x509", "-in", str(damaged), "-noout"],
            capture_output=True,
            check=False,
        ).returncode
        != 0
    )


def test_docs_list_every_kind_with_its_severity() -> None:
    doc = (REPO_ROOT / "docs" / "audit.md").read_text(encoding="utf-8")
    listed: dict[str, str] = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if (
            len(cells) == 3
            and cells[0].startswith("`")
            and cells[1]
            in (
                *_report.SEVERITIES,
                *(f"{a}, {b}" for a in _report.SEVERITIES for b in _report.SEVERITIES),
            )
        ):
            names = [n.strip(" `") for n in cells[0].split(",")]
            severities = [s.strip() for s in cells[1].split(",")]
            if len(severities) == 1:
                severities *= len(names)
            listed.update(zip(names, severities, strict=True))

    assert listed == {kind: spec["severity"] for kind, spec in _report.KINDS.items()}
    for severity in _report.SEVERITIES:
        assert f"*{severity}*" in doc.lower()


def test_docs_state_facts_instead_of_citing_a_file_outside_the_collection() -> None:
    for path in (
        "docs/audit.md",
        "plugins/modules/fleet_report.py",
        "playbooks/audit.yml",
    ):
        assert "REFERENCE" not in (REPO_ROOT / path).read_text(encoding="utf-8"), path
