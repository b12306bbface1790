"""playbooks/audit.yml against the ServiceNow test double, with Windows facts from a fixture file.

The fleet is seeded with one problem of each kind the issue names: robot04 has no mapping, robot02's
client certificate expires in ten days, the robot CA was re-uploaded and is not published yet,
robot03's Windows account lacks Read on its key and robot05's host does not answer (a result from the
facts file). robot06 is a real WinRM host on a closed local port, so the playbook's own win_cert_info
task meets an unreachable host. Certificates are issued here with cryptography; their thumbprints in
the report are checked against openssl.
"""

from __future__ import annotations

import datetime
import html.parser
import json
import os
import socket
import subprocess
import typing as t
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.conftest import REPO, PlaybookRun, run_playbook
from tests.servicenow_double import fixture as double
from tests.servicenow_double.fixture import SnowInstance

# The double's session fixture, made visible to pytest in this module.
snow_instance_factory = double.snow_instance_factory
HERE = Path(__file__).parent / "playbooks" / "audit"
AUDIT = REPO / "playbooks" / "audit.yml"
NOW = datetime.datetime.now(datetime.UTC)
TODAY = NOW.date().isoformat()
ROBOTS = [f"robot{i:02d}" for i in range(1, 7)]
CA_NAME = "Audit Test CA"
EXPECTED = [
    (None, "ca_not_published"),
    ("robot03", "key_acl_no_read"),
    ("robot04", "mapping_missing"),
    ("robot05", "host_unreachable"),
    ("robot06", "host_unreachable"),
    ("robot02", "cert_expiring"),
]


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Audit Test"),
        ]
    )


def _issue(
    subject: x509.Name,
    key: t.Any,
    issuer: x509.Name,
    issuer_key: t.Any,
    days: int,
    eku: t.Any = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=days))
    )
    if eku is None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        )
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def closed_port() -> int:
    """A local TCP port nobody listens on: bound once to get a free number, then closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def openssl_thumbprint(path: Path) -> str:
    out = subprocess.run(
        ["openssl", "x509", "-in", str(path), "-noout", "-fingerprint", "-sha1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.strip().split("=", 1)[1].replace(":", "")


class AuditFleet(t.NamedTuple):
    snow: SnowInstance
    work: Path
    extra_vars: dict[str, t.Any]
    inventory: Path
    report_dir: Path
    certs: Path


@pytest.fixture(scope="module")
def fleet(
    snow_instance_factory: t.Callable[..., SnowInstance],
    tmp_path_factory: pytest.TempPathFactory,
) -> AuditFleet:
    snow = snow_instance_factory(plugin_delay=0.2, publish_delay=0.2)
    work = tmp_path_factory.mktemp("audit")
    certs = work / "robot-certs"
    (certs / "ca").mkdir(parents=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue(_name(CA_NAME), ca_key, _name(CA_NAME), ca_key, 3650)
    (certs / "ca" / "robot-ca.crt").write_bytes(_pem(ca))

    facts_text = (HERE / "windows_facts.yml").read_text(encoding="utf-8")
    mappings = []
    for name in ROBOTS:
        folder = certs / name
        folder.mkdir()
        client_days = 10 if name == "robot02" else 300
        client = _issue(
            _name(name),
            ec.generate_private_key(ec.SECP256R1()),
            ca.subject,
            ca_key,
            client_days,
            ExtendedKeyUsageOID.CLIENT_AUTH,
        )
        signing = _issue(
            _name(f"{name} code signing"),
            ec.generate_private_key(ec.SECP256R1()),
            ca.subject,
            ca_key,
            300,
            ExtendedKeyUsageOID.CODE_SIGNING,
        )
        # The role's exports: leaf first, then the CA.
        (folder / "client.pem").write_bytes(_pem(client, ca))
        (folder / "codesign.pem").write_bytes(_pem(signing, ca))
        (folder / "client.crt").write_bytes(_pem(client))
        facts_text = facts_text.replace(
            f"@{name}.client@", client.fingerprint(hashes.SHA1()).hex().upper()
        )
        facts_text = facts_text.replace(
            f"@{name}.code_signing@", signing.fingerprint(hashes.SHA1()).hex().upper()
        )
        if name != "robot04":
            (work / f"{name}-map.pem").write_bytes(_pem(client))
            mappings.append(
                {
                    "user": f"audit.{name}",
                    "name": f"{name} mTLS",
                    "pem_path": str(work / f"{name}-map.pem"),
                }
            )
    facts_file = work / "windows_facts.yml"
    facts_file.write_text(facts_text, encoding="utf-8")

    snow.create_robot_users([f"audit.{n}" for n in ROBOTS])
    sn = {
        "host": snow.host,
        "username": snow.admin_user,
        "password": snow.admin_password,
        "ca_path": snow.ca_path,
        "timeout": 10,
    }
    seeded = run_playbook(
        HERE / "seed.yml",
        tmp_path=work,
        extra_vars={
            "sn": sn,
            "ca_name": CA_NAME,
            "ca_pem_path": str(certs / "ca" / "robot-ca.crt"),
            "mappings": mappings,
        },
    )
    assert seeded.rc == 0, seeded.stdout + seeded.stderr

    # Someone re-uploads the CA's PEM: the instance publishes it again, which takes a while.
    snow.set_delays(publish=3600)
    status, _headers, body = snow.call(
        "GET",
        f"/api/now/table/sys_ca_certificate?sysparm_query=name={CA_NAME.replace(' ', '%20')}",
    )
    assert status == 200 and len(body["result"]) == 1, body
    ca_sys_id = body["result"][0]["sys_id"]
    status, _headers, body = snow.call(
        "POST",
        f"/api/now/attachment/file?table_name=sys_ca_certificate&table_sys_id={ca_sys_id}&file_name=robot-ca.pem",
        raw=_pem(ca),
        headers={"Content-Type": "application/x-pem-file"},
    )
    assert status == 201, body

    inventory = work / "inventory.yml"
    hosts = {
        name: {
            "ansible_connection": "local",
            "robot_snow_user": f"audit.{name}",
            "robot_windows_account": f"AUDIT\\svc-{name}",
            "robot_windows_host": name != "robot04",
        }
        for name in ROBOTS
    }
    hosts["robot06"].update(
        ansible_connection="winrm",
        ansible_host="127.0.0.1",
        ansible_port=closed_port(),
        ansible_winrm_scheme="http",
        ansible_winrm_transport="basic",
        ansible_user="auditor",
        ansible_password="audit-test-only",
    )
    inventory.write_text(
        yaml.safe_dump(
            {
                "robots": {
                    "hosts": hosts,
                    "vars": {"robot_identity_output_dir": str(certs)},
                }
            }
        ),
        encoding="utf-8",
    )
    report_dir = work / "report"
    extra_vars = {
        "servicenow_cba_instance": sn,
        "robot_certs_report_dir": str(report_dir),
        "robot_certs_audit_windows_facts_file": str(facts_file),
        "robot_certs_audit_now": TODAY,
    }
    return AuditFleet(snow, work, extra_vars, inventory, report_dir, certs)


def audit(fleet: AuditFleet, tmp_path: Path, **kwargs: t.Any) -> PlaybookRun:
    variables = dict(fleet.extra_vars)
    variables.update(kwargs.pop("extra_vars", {}))
    return run_playbook(
        AUDIT,
        tmp_path=tmp_path,
        inventory=fleet.inventory,
        extra_vars=variables,
        **kwargs,
    )


class Page(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self.rows: list[tuple[str, str]] = []
        self.text: list[str] = []
        self._kind: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        values = dict(attrs)
        self.urls += [
            str(values[a])
            for a in ("src", "href", "xlink:href", "srcset", "action", "data")
            if values.get(a)
        ]
        if tag == "tr" and "finding" in (values.get("class") or ""):
            self._kind = values.get("data-kind") or ""
            self.rows.append((self._kind, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._kind = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._kind is not None:
            kind, text = self.rows[-1]
            self.rows[-1] = (kind, text + data)


class FirstRun(t.NamedTuple):
    run: PlaybookRun
    requests: list[dict[str, t.Any]]


@pytest.fixture(scope="module")
def first(fleet: AuditFleet, tmp_path_factory: pytest.TempPathFactory) -> FirstRun:
    fleet.snow.clear_requests()
    run = audit(fleet, tmp_path_factory.mktemp("first"))
    return FirstRun(
        run,
        [
            r
            for r in fleet.snow.requests()
            if r["port"] == "main" and not r["path"].startswith("/_double/")
        ],
    )


@pytest.fixture
def first_run(first: FirstRun) -> PlaybookRun:
    return first.run


def test_report_lists_each_seeded_problem(
    fleet: AuditFleet, first_run: PlaybookRun
) -> None:
    assert first_run.rc == 0, first_run.stdout + first_run.stderr

    document = json.loads(
        (fleet.report_dir / "robot-certs-audit.json").read_text(encoding="utf-8")
    )

    assert [(f["robot"], f["kind"]) for f in document["findings"]] == EXPECTED
    assert document["summary"]["findings"] == {"error": 5, "warning": 1, "info": 0}
    by_kind = {f["kind"]: f for f in document["findings"]}
    assert "'audit.robot04'" in by_kind["mapping_missing"]["message"]
    assert "publish status 'pending'" in by_kind["ca_not_published"]["message"]
    assert "AUDIT\\svc-robot03" in by_kind["key_acl_no_read"]["message"]
    unreachable = [
        f["message"] for f in document["findings"] if f["kind"] == "host_unreachable"
    ]
    assert "robot05.audit.invalid" in unreachable[0]
    assert (
        "Connection refused" in unreachable[1]
        and "audit-test-only" not in unreachable[1]
    )
    assert (
        "in 10 days" in by_kind["cert_expiring"]["message"]
        or "in 9 days" in by_kind["cert_expiring"]["message"]
    )
    windows = {r["name"]: r["windows"]["status"] for r in document["robots"]}
    assert windows == {
        "robot01": "checked",
        "robot02": "checked",
        "robot03": "checked",
        "robot04": "skipped",
        "robot05": "unreachable",
        "robot06": "unreachable",
    }


def test_report_facts_match_openssl(fleet: AuditFleet, first_run: PlaybookRun) -> None:
    assert first_run.rc == 0, first_run.stdout + first_run.stderr

    document = json.loads(
        (fleet.report_dir / "robot-certs-audit.json").read_text(encoding="utf-8")
    )

    for row in document["robots"]:
        assert row["certificates"]["client"]["thumbprint"] == openssl_thumbprint(
            fleet.certs / row["name"] / "client.crt"
        )
    assert document["ca"]["thumbprint"] == openssl_thumbprint(
        fleet.certs / "ca" / "robot-ca.crt"
    )


def test_html_is_self_contained_and_lists_each_problem(
    fleet: AuditFleet, first_run: PlaybookRun
) -> None:
    assert first_run.rc == 0, first_run.stdout + first_run.stderr
    document = json.loads(
        (fleet.report_dir / "robot-certs-audit.json").read_text(encoding="utf-8")
    )

    page = Page()
    page.feed((fleet.report_dir / "robot-certs-audit.html").read_text(encoding="utf-8"))

    assert page.urls == []
    assert not {"script", "link", "img", "iframe"} & page.tags
    assert [kind for kind, _text in page.rows] == [kind for _robot, kind in EXPECTED]
    for (kind, text), finding in zip(page.rows, document["findings"], strict=True):
        assert finding["kind"] == kind
        assert finding["message"] in text and finding["action"] in text
        assert (finding["robot"] or "All robots") in text
    assert f"today {TODAY}" in "".join(page.text)


def test_servicenow_is_read_once_and_never_written(first: FirstRun) -> None:
    assert first.run.rc == 0, first.run.stdout + first.run.stderr

    assert first.requests and all(r["method"] == "GET" for r in first.requests)
    assert (
        sum(
            1
            for r in first.requests
            if r["path"] == "/api/now/table/sys_user_certificate"
        )
        == 1
    )


def test_rerun_changes_nothing_and_check_mode_writes_nothing(
    fleet: AuditFleet, first_run: PlaybookRun, tmp_path: Path
) -> None:
    assert first_run.rc == 0, first_run.stdout + first_run.stderr
    json_file = fleet.report_dir / "robot-certs-audit.json"
    before = (json_file.read_bytes(), os.stat(json_file).st_mtime_ns)

    again = audit(fleet, tmp_path)
    other_day = audit(
        fleet,
        tmp_path,
        check=True,
        diff=True,
        extra_vars={
            "robot_certs_audit_now": "2099-01-01",
            "robot_certs_audit_fail_on": "error",
        },
    )

    assert again.rc == 0, again.stdout + again.stderr
    assert again.changed_tasks() == []
    # In 2099 every certificate has expired: the report would change, the files stay as they are,
    # and robot_certs_audit_fail_on turns the problems into a failed run with one line.
    assert other_day.task("Write the fleet report")["changed"] is True
    assert '"now": "2099-01-01T00:00:00Z"' in other_day.stdout
    assert (json_file.read_bytes(), os.stat(json_file).st_mtime_ns) == before
    assert other_day.rc != 0
    assert "the audit found problems needing action: " in other_day.stdout
    assert "Traceback" not in other_day.stdout + other_day.stderr


def test_left_out_or_failed_sources_are_never_false_problems(
    fleet: AuditFleet, first_run: PlaybookRun, tmp_path: Path
) -> None:
    """A wrong ServiceNow password (registered with failed_when: false) and Windows left out."""
    assert first_run.rc == 0, first_run.stdout + first_run.stderr
    report_dir = tmp_path / "report"
    instance = dict(fleet.extra_vars["servicenow_cba_instance"], password="wrong")

    run = audit(
        fleet,
        tmp_path,
        extra_vars={
            "servicenow_cba_instance": instance,
            "robot_certs_windows": False,
            "robot_certs_report_dir": str(report_dir),
        },
    )

    assert run.rc == 0, run.stdout + run.stderr
    document = json.loads((report_dir / "robot-certs-audit.json").read_text("utf-8"))
    found = [(f["severity"], f["robot"], f["kind"]) for f in document["findings"]]
    assert ("warning", None, "servicenow_unavailable") in found
    assert ("info", "robot06", "windows_not_checked") in found
    assert not {k for _s, _r, k in found} & {
        "ca_not_registered",
        "ca_not_published",
        "mapping_missing",
    }
    snow = next(
        f for f in document["findings"] if f["kind"] == "servicenow_unavailable"
    )
    assert "401" in snow["message"] and "\n" not in snow["message"]
    page = (report_dir / "robot-certs-audit.html").read_text("utf-8")
    banner = page[page.index('role="status">') :].split("</div>", 1)[0]
    assert "Not checked: " in banner
    assert "Windows stores for 1 robot (no Windows facts given)" in banner
    assert "Traceback" not in run.stdout + run.stderr


def test_facts_of_another_shape_stop_the_task_with_one_line(
    fleet: AuditFleet, tmp_path: Path
) -> None:
    report = tmp_path / "never.json"
    play = tmp_path / "bad-facts.yml"
    play.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Report from facts of the wrong shape",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "Write the fleet report",
                            "snowrpa.robot_certs.fleet_report": {
                                "robots": [
                                    {
                                        "name": "robot01",
                                        "client_cert_path": str(
                                            fleet.certs / "robot01" / "client.pem"
                                        ),
                                        "windows_facts": "garbage",
                                    }
                                ],
                                "servicenow_facts": {"foo": 1},
                                "json_path": str(report),
                            },
                        }
                    ],
                }
            ]
        ),
        encoding="utf-8",
    )

    run = run_playbook(play, tmp_path=tmp_path)

    assert run.rc != 0
    message = run.task("Write the fleet report")["msg"]
    assert message.startswith(
        "robots[robot01].windows_facts must be the registered result of snowrpa.robot_certs.win_cert_info"
    )
    assert message.endswith("; got a string") and "\n" not in message
    assert "Traceback" not in run.stdout + run.stderr
    assert not report.exists()
