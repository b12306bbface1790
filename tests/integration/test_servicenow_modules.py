"""The ServiceNow modules against the local test double, end to end through real playbooks.

Each robot's certificate is issued here with cryptography by a throwaway CA, mapped with the
modules, then proven by a real mutual-TLS login on the double's second port. Request counts and
"nothing half-written" come from the double's request log and tables, not from the modules.
"""

from __future__ import annotations

import datetime
import math
import subprocess
import typing as t
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.servicenow_double import fixture as double
from tests.servicenow_double.fixture import SnowInstance

# The double's session fixture, made visible to pytest in this module.
snow_instance_factory = double.snow_instance_factory
PLAYBOOKS = Path(__file__).parent / "playbooks" / "servicenow"
NOW = datetime.datetime.now(datetime.UTC)
CA_NAME = "Robot CA"
PROPERTIES = [
    {"name": "glide.authenticate.mutual.enabled", "value": "true"},
    {"name": "sn_rpa_fdn.instance_authentication", "value": "mtls"},
]
WRITES = ("POST", "PATCH", "PUT", "DELETE")
PFX_PASSPHRASE = "pfx-pass-7"


class Pki(t.NamedTuple):
    key: t.Any
    cert: x509.Certificate


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Org"),
        ]
    )


def make_ca(cn: str) -> Pki:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return Pki(key, cert)


def make_leaf(cn: str, ca: Pki, *, days: int = 90, expired: bool = False) -> Pki:
    key = ec.generate_private_key(ec.SECP256R1())
    start = NOW - datetime.timedelta(days=10 if expired else 1)
    end = (
        NOW - datetime.timedelta(days=1)
        if expired
        else NOW + datetime.timedelta(days=days)
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    return Pki(key, cert)


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key: t.Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def instance_args(snow: SnowInstance, **overrides: t.Any) -> dict[str, t.Any]:
    args = {
        "host": snow.host,
        "username": snow.admin_user,
        "password": snow.admin_password,
        "ca_path": snow.ca_path,
        "timeout": 10,
    }
    args.update(overrides)
    return {k: v for k, v in args.items() if v is not None}


def table(snow: SnowInstance, name: str, query: str = "") -> list[dict[str, t.Any]]:
    path = f"/api/now/table/{name}?sysparm_limit=10000" + (
        f"&sysparm_query={query}" if query else ""
    )
    status, _headers, body = snow.call("GET", path)
    assert status == 200, body
    return body["result"]


def attachments(snow: SnowInstance) -> list[dict[str, t.Any]]:
    status, _headers, body = snow.call("GET", "/api/now/attachment?sysparm_limit=10000")
    assert status == 200, body
    return body["result"]


def snapshot(snow: SnowInstance) -> dict[str, list[str]]:
    """The sys_ids of every certificate record and attachment, to prove nothing was added or lost."""
    return {
        "ca": sorted(r["sys_id"] for r in table(snow, "sys_ca_certificate")),
        "user": sorted(r["sys_id"] for r in table(snow, "sys_user_certificate")),
        "attachments": sorted(r["sys_id"] for r in attachments(snow)),
    }


def api_requests(snow: SnowInstance) -> list[dict[str, t.Any]]:
    return [r for r in snow.requests() if r["port"] == "main"]


class Fleet(t.NamedTuple):
    snow: SnowInstance
    ca: Pki
    robots: dict[str, Pki]
    vars: dict[str, t.Any]
    first: t.Any
    work: Path


@pytest.fixture(scope="module")
def fleet(
    snow_instance_factory: t.Callable[..., SnowInstance],
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Fleet:
    """An empty instance brought to five mapped robots by one real playbook run."""
    from tests.conftest import run_playbook

    snow = snow_instance_factory(plugin_delay=1.0, publish_delay=0.6)
    work = tmp_path_factory.mktemp("fleet")
    names = [f"robot{i:02d}" for i in range(1, 6)]
    snow.create_robot_users(names)
    # The CA, the robots' certificates and their PKCS#12 files come from cert_generate and cert_export.
    issued = run_playbook(
        PLAYBOOKS / "pki.yml",
        tmp_path=work,
        extra_vars={
            "pki_dir": str(work),
            "robots": names,
            "pfx_passphrase": PFX_PASSPHRASE,
        },
    )
    assert issued.rc == 0, issued.stdout + issued.stderr
    ca = _load_pki(work, "ca")
    robots = {n: _load_pki(work, n) for n in names}
    mappings = []
    for name in robots:
        mappings.append(
            {
                "user": name,
                "name": f"{name} mTLS",
                "pem_path": str(work / f"{name}.pem"),
            }
        )
    extra_vars = {
        "sn": instance_args(snow),
        "ca_name": CA_NAME,
        "ca_pem_path": str(work / "ca.pem"),
        "mappings": mappings,
        "properties": PROPERTIES,
    }
    first = run_playbook(
        PLAYBOOKS / "fleet.yml", tmp_path=work, extra_vars=extra_vars, diff=True
    )
    return Fleet(snow, ca, robots, extra_vars, first, work)


def _load_pki(directory: Path, name: str) -> Pki:
    key = serialization.load_pem_private_key(
        (directory / f"{name}.key").read_bytes(), None
    )
    return Pki(
        key, x509.load_pem_x509_certificate((directory / f"{name}.pem").read_bytes())
    )


def test_empty_instance_to_five_robots_logging_in(fleet: Fleet, tmp_path: Path) -> None:
    run = fleet.first
    assert run.rc == 0, run.stdout + run.stderr
    preflight = run.task("Check the instance")
    assert (
        preflight["facts"]["adcv2"] is True
        and preflight["facts"]["plugin"]["active"] is False
    )
    assert any(
        "com.glide.auth.mutual is not active" in p for p in preflight["problems"]
    )
    assert run.task("Activate the mutual authentication plugin")["changed"] is True
    assert (
        run.task("Activate the mutual authentication plugin")["progress"]["status"]
        == "2"
    )
    assert [r["changed"] for r in run.task("Set the system properties")["results"]] == [
        False,
        True,
    ]
    ca = run.task("Register the robot CA")
    assert ca["changed"] is True and ca["ca"]["publish_status"] == "exists"
    mapped = run.task("Map the robots")
    assert [m["action"] for m in mapped["mappings"]] == ["created"] * 5

    # Independent view: the instance's own tables, then a real mutual-TLS handshake per robot.
    properties = {r["name"]: r["value"] for r in table(fleet.snow, "sys_properties")}
    assert properties["sn_rpa_fdn.instance_authentication"] == "mtls"
    records = table(fleet.snow, "sys_user_certificate")
    assert sorted(r["name"] for r in records) == [
        f"robot{i:02d} mTLS" for i in range(1, 6)
    ]
    for name in fleet.robots:
        p12 = fleet.work / f"{name}.p12"
        assert fleet.snow.login_with_pkcs12(p12, PFX_PASSPHRASE) == name

    stranger = make_leaf("robot01", make_ca("Other CA"))
    (tmp_path / "stranger.pem").write_text(pem(stranger.cert))
    (tmp_path / "stranger.key").write_text(key_pem(stranger.key))
    refused = fleet.snow.login_with(
        tmp_path / "stranger.pem", tmp_path / "stranger.key"
    )
    assert refused != "robot01" and refused

    output = run.stdout + run.stderr + str(run.results)
    assert fleet.snow.admin_password not in output and "Authorization" not in output


def test_api_key_authentication_and_no_key_in_the_output(
    fleet: Fleet, playbook: t.Callable[..., t.Any]
) -> None:
    snow = fleet.snow
    sn = instance_args(snow, username=None, password=None, api_key=snow.api_key)

    run = playbook(
        PLAYBOOKS / "user_cert.yml",
        extra_vars={"sn": sn, "mappings": fleet.vars["mappings"]},
        verbosity=3,
    )

    assert run.rc == 0, run.stdout + run.stderr
    assert run.task("Map the robots")["changed"] is False
    assert snow.api_key not in run.stdout + run.stderr + str(run.results)


def test_cert_info_reports_fingerprints_from_the_instance(fleet: Fleet) -> None:
    info = fleet.first.task("List the certificates")
    assert [c["name"] for c in info["cas"]] == [CA_NAME]
    assert (
        info["cas"][0]["thumbprint"]
        == fleet.ca.cert.fingerprint(hashes.SHA1()).hex().upper()
    )
    by_user = {m["user_name"]: m for m in info["mappings"]}
    assert sorted(by_user) == sorted(fleet.robots)
    for name, robot in fleet.robots.items():
        assert (
            by_user[name]["sha256_fingerprint"]
            == robot.cert.fingerprint(hashes.SHA256()).hex(":").upper()
        )
        assert by_user[name]["ca_name"] == CA_NAME and by_user[name]["active"] is True


def test_attached_pems_check_out_with_openssl(fleet: Fleet, tmp_path: Path) -> None:
    """What the instance holds, read back and checked by openssl, matches what the modules report."""
    info = fleet.first.task("List the certificates")
    found = {a["table_sys_id"]: a for a in attachments(fleet.snow)}
    ca_file = tmp_path / "ca-from-instance.pem"
    ca_file.write_bytes(
        _download(fleet.snow, found[info["cas"][0]["sys_id"]]["sys_id"])
    )
    for mapping in info["mappings"]:
        leaf = tmp_path / f"{mapping['user_name']}.pem"
        leaf.write_bytes(_download(fleet.snow, found[mapping["sys_id"]]["sys_id"]))
        verify = subprocess.run(
            [
                "openssl",
                "verify",
                "-purpose",
                "sslclient",
                "-CAfile",
                str(ca_file),
                str(leaf),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert verify.returncode == 0 and verify.stdout.strip().endswith(": OK"), (
            verify.stdout + verify.stderr
        )
        for digest, key, strip in (
            ("-sha256", "sha256_fingerprint", False),
            ("-sha1", "thumbprint", True),
        ):
            printed = (
                subprocess.run(
                    [
                        "openssl",
                        "x509",
                        "-noout",
                        "-fingerprint",
                        digest,
                        "-in",
                        str(leaf),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                .stdout.strip()
                .split("=", 1)[1]
            )
            assert (printed.replace(":", "") if strip else printed) == mapping[key]
        assert "BEGIN PRIVATE KEY" not in leaf.read_text()


def _download(snow: SnowInstance, attachment_sys_id: str) -> bytes:
    status, _headers, body = snow.call(
        "GET",
        f"/api/now/attachment/{attachment_sys_id}/file",
        headers={"Accept": "*/*"},
    )
    assert status == 200
    return body.encode() if isinstance(body, str) else bytes(body)


def test_second_run_changes_nothing_and_only_reads(
    fleet: Fleet, playbook: t.Callable[..., t.Any]
) -> None:
    fleet.snow.clear_requests()
    run = playbook(PLAYBOOKS / "fleet.yml", extra_vars=fleet.vars, diff=True)
    assert run.rc == 0, run.stdout + run.stderr
    assert run.changed_tasks() == []
    # Plugin active, properties set, inferred schema confirmed by the instance's dictionary: nothing left to fix.
    assert run.task("Check the instance")["problems"] == []
    logged = api_requests(fleet.snow)
    assert logged and {r["method"] for r in logged} == {"GET"}


def test_check_mode_sends_no_write_and_no_secret_at_vvv(
    fleet: Fleet, playbook: t.Callable[..., t.Any], tmp_path: Path
) -> None:
    """Pending changes of every kind, in check mode, over OAuth, at -vvv with diffs."""
    snow = fleet.snow
    other_ca = make_ca("Robot Test CA 2")
    (tmp_path / "ca2.pem").write_text(pem(other_ca.cert))
    fleet.snow.create_robot_users(["robot90"])
    newcomer = make_leaf("robot90", fleet.ca)
    (tmp_path / "robot90.pem").write_text(pem(newcomer.cert))
    oauth = instance_args(
        snow,
        client_id=snow.oauth_client_id,
        client_secret=snow.oauth_client_secret,
        grant_type="password",
    )
    variables = dict(
        fleet.vars,
        sn=oauth,
        ca_pem_path=str(tmp_path / "ca2.pem"),
        mappings=[
            *fleet.vars["mappings"],
            {
                "user": "robot90",
                "name": "robot90 mTLS",
                "pem_path": str(tmp_path / "robot90.pem"),
            },
        ],
        properties=[{"name": "sn_rpa_fdn.code_signing_required", "value": "true"}],
    )
    before = snapshot(fleet.snow)
    fleet.snow.clear_requests()

    run = playbook(
        PLAYBOOKS / "fleet.yml",
        extra_vars=variables,
        check=True,
        diff=True,
        verbosity=3,
    )
    logged = api_requests(snow)

    assert run.rc == 0, run.stdout + run.stderr
    assert (
        "Register the robot CA" in run.changed_tasks()
        and "Map the robots" in run.changed_tasks()
    )
    assert [m["action"] for m in run.task("Map the robots")["mappings"]][
        -1
    ] == "created"
    assert (
        "sn_rpa_fdn.code_signing_required" in run.stderr + run.stdout
    )  # the warning before turning it on
    tokens = [r for r in logged if r["path"] == "/oauth_token.do"]
    assert len(tokens) == 6 and {r["status"] for r in tokens} == {200}
    assert {r["method"] for r in logged if r not in tokens} == {"GET"}
    assert snapshot(fleet.snow) == before
    output = run.stdout + run.stderr + str(run.results)
    for secret in (snow.admin_password, snow.oauth_client_secret):
        assert secret not in output
    assert "Authorization" not in output and "Bearer" not in output
    diff = run.task("Register the robot CA")["diff"]
    assert (
        diff["before"]["certificates"][0]["sha256_fingerprint"]
        != diff["after"]["certificates"][0]["sha256_fingerprint"]
    )


def test_check_mode_on_an_empty_instance_predicts_everything_and_writes_nothing(
    snow_instance_factory: t.Callable[..., SnowInstance],
    playbook: t.Callable[..., t.Any],
    tmp_path: Path,
) -> None:
    snow = snow_instance_factory()
    ca = make_ca("Fresh CA")
    (tmp_path / "ca.pem").write_text(pem(ca.cert))
    snow.create_robot_users(["fresh01"])
    (tmp_path / "fresh01.pem").write_text(pem(make_leaf("fresh01", ca).cert))
    variables = {
        "sn": instance_args(snow),
        "ca_name": CA_NAME,
        "ca_pem_path": str(tmp_path / "ca.pem"),
        "mappings": [
            {
                "user": "fresh01",
                "name": "fresh01 mTLS",
                "pem_path": str(tmp_path / "fresh01.pem"),
            }
        ],
        "properties": PROPERTIES,
    }
    snow.clear_requests()

    run = playbook(PLAYBOOKS / "fleet.yml", extra_vars=variables, check=True)

    assert run.rc == 0, run.stdout + run.stderr
    assert {
        "Activate the mutual authentication plugin",
        "Register the robot CA",
        "Map the robots",
    } <= set(run.changed_tasks())
    assert {r["method"] for r in api_requests(snow)} == {"GET"}
    status, _headers, body = snow.call(
        "GET", "/api/now/table/v_plugin?sysparm_query=id=com.glide.auth.mutual"
    )
    assert status == 200 and body["result"][0]["active"] == "inactive"


@pytest.mark.parametrize("count", [5, 250])
def test_request_budget_of_an_unchanged_rerun(
    fleet: Fleet, playbook: t.Callable[..., t.Any], tmp_path: Path, count: int
) -> None:
    names = [f"budget{count}-{i:03d}" for i in range(count)]
    fleet.snow.create_robot_users(names)
    mappings = []
    for n in names:
        (tmp_path / f"{n}.pem").write_text(pem(make_leaf(n, fleet.ca).cert))
        mappings.append(
            {"user": n, "name": f"{n} mTLS", "pem_path": str(tmp_path / f"{n}.pem")}
        )
    variables = {"sn": fleet.vars["sn"], "mappings": mappings}
    first = playbook(PLAYBOOKS / "user_cert.yml", extra_vars=variables)
    assert first.rc == 0, first.stdout + first.stderr
    fleet.snow.clear_requests()

    again = playbook(PLAYBOOKS / "user_cert.yml", extra_vars=variables)

    assert again.rc == 0 and again.task("Map the robots")["changed"] is False
    logged = api_requests(fleet.snow)
    assert len(logged) <= math.ceil(count / 100) + 5, logged
    assert {r["method"] for r in logged} == {"GET"}


def test_survives_a_429_storm_and_a_burst_of_503s(
    fleet: Fleet, playbook: t.Callable[..., t.Any], tmp_path: Path
) -> None:
    fleet.snow.create_robot_users(["storm01", "storm02"])
    mappings = [
        {
            "user": n,
            "name": f"{n} mTLS",
            "pem_content": pem(make_leaf(n, fleet.ca).cert),
        }
        for n in ("storm01", "storm02")
    ]
    fleet.snow.clear_requests()
    fleet.snow.inject(
        status=429, count=3, every=1, retry_after=1, path_prefix="/api/now/attachment"
    )
    fleet.snow.inject(status=503, count=3, path_prefix="/api/now/table/sys_user")
    try:
        run = playbook(
            PLAYBOOKS / "user_cert.yml",
            extra_vars={"sn": fleet.vars["sn"], "mappings": mappings},
        )
    finally:
        fleet.snow.clear_faults()
    assert run.rc == 0, run.stdout + run.stderr
    logged = api_requests(fleet.snow)
    statuses = [r["status"] for r in logged]
    # Retry-After: 1 was honoured: the next request came at least a second after each 429.
    waits = [
        b["ts"] - a["ts"]
        for a, b in zip(logged, logged[1:], strict=False)
        if a["status"] == 429
    ]
    assert waits and min(waits) >= 0.95, waits
    assert statuses.count(429) == 3 and statuses.count(503) == 3
    assert [m["action"] for m in run.task("Map the robots")["mappings"]] == [
        "created",
        "created",
    ]
    assert {
        r["user.user_name"] if "user.user_name" in r else r["name"]
        for r in table(fleet.snow, "sys_user_certificate", "nameSTARTSWITHstorm")
    } == {
        "storm01 mTLS",
        "storm02 mTLS",
    }


def test_replaced_certificate_and_exclusive_rotation(
    fleet: Fleet, playbook: t.Callable[..., t.Any], tmp_path: Path
) -> None:
    fleet.snow.create_robot_users(["rotor"])
    old, new = make_leaf("rotor", fleet.ca), make_leaf("rotor", fleet.ca)
    base = {"sn": fleet.vars["sn"]}
    assert (
        playbook(
            PLAYBOOKS / "user_cert.yml",
            extra_vars=dict(
                base,
                mappings=[
                    {
                        "user": "rotor",
                        "name": "rotor 2026",
                        "pem_content": pem(old.cert),
                    }
                ],
            ),
        ).rc
        == 0
    )

    run = playbook(
        PLAYBOOKS / "user_cert.yml",
        extra_vars=dict(
            base,
            exclusive="deactivate",
            mappings=[
                {"user": "rotor", "name": "rotor 2027", "pem_content": pem(new.cert)}
            ],
        ),
        diff=True,
    )

    assert run.rc == 0, run.stdout + run.stderr
    result = run.task("Map the robots")
    assert [d["name"] for d in result["deactivated"]] == ["rotor 2026"]
    states = {
        r["name"]: r["active"]
        for r in table(fleet.snow, "sys_user_certificate", "nameSTARTSWITHrotor")
    }
    assert states == {"rotor 2026": "false", "rotor 2027": "true"}

    newer = make_leaf("rotor", fleet.ca)
    replaced = playbook(
        PLAYBOOKS / "user_cert.yml",
        extra_vars=dict(
            base,
            mappings=[
                {"user": "rotor", "name": "rotor 2027", "pem_content": pem(newer.cert)}
            ],
        ),
        diff=True,
    )
    entry = replaced.task("Map the robots")
    assert entry["mappings"][0]["action"] == "replaced"
    diff = entry["diff"]
    assert (
        diff["before"]["rotor/rotor 2027"]["sha256_fingerprint"]
        == new.cert.fingerprint(hashes.SHA256()).hex(":").upper()
    )
    assert (
        diff["after"]["rotor/rotor 2027"]["sha256_fingerprint"]
        == newer.cert.fingerprint(hashes.SHA256()).hex(":").upper()
    )
    names = sorted(
        r["name"]
        for r in table(fleet.snow, "sys_user_certificate", "nameSTARTSWITHrotor")
    )
    assert names == ["rotor 2026", "rotor 2027"]


def _error_case(
    case: str, fleet: Fleet, tmp_path: Path
) -> tuple[dict[str, t.Any], str]:
    """Variables of one failing run and a phrase its message must contain."""
    snow = fleet.snow
    robot = fleet.robots["robot01"]
    good = [
        {
            "user": "robot01",
            "name": "robot01 extra",
            "pem_content": pem(make_leaf("robot01", fleet.ca).cert),
        }
    ]
    if case == "wrong password":
        return {
            "sn": instance_args(snow, password="not-the-password"),
            "mappings": good,
        }, "HTTP 401"
    if case == "wrong OAuth secret":
        sn = instance_args(
            snow,
            password=None,
            username=None,
            client_id=snow.oauth_client_id,
            client_secret="wrong-secret-value",
        )
        return {"sn": sn, "mappings": good}, "/oauth_token.do failed with HTTP 401"
    if case == "missing sso_config_admin":
        return {
            "sn": instance_args(
                snow, username=snow.no_sso_user, password=snow.no_sso_password
            ),
            "mappings": good,
        }, "sso_config_admin"
    if case == "unreachable host":
        return {
            "sn": instance_args(snow, host="127.0.0.1:9"),
            "mappings": good,
        }, "cannot reach"
    if case == "TLS verification failure":
        return {
            "sn": instance_args(snow, ca_path=None),
            "mappings": good,
        }, "TLS verification"
    if case == "PEM with a private key":
        content = pem(robot.cert) + key_pem(robot.key)
        return {
            "sn": instance_args(snow),
            "mappings": [
                {"user": "robot01", "name": "robot01 key", "pem_content": content}
            ],
        }, "private key"
    if case == "unregistered CA":
        stranger = make_leaf("robot01", make_ca("Unregistered CA"))
        return {
            "sn": instance_args(snow),
            "mappings": [
                {
                    "user": "robot01",
                    "name": "robot01 other",
                    "pem_content": pem(stranger.cert),
                }
            ],
        }, ("not registered as an active CA")
    if case == "expired certificate":
        expired = make_leaf("robot01", fleet.ca, expired=True)
        return {
            "sn": instance_args(snow),
            "mappings": [
                {
                    "user": "robot01",
                    "name": "robot01 old",
                    "pem_content": pem(expired.cert),
                }
            ],
        }, "expired"
    raise AssertionError(case)


ERROR_CASES = [
    "wrong password",
    "wrong OAuth secret",
    "missing sso_config_admin",
    "unreachable host",
    "TLS verification failure",
    "PEM with a private key",
    "unregistered CA",
    "expired certificate",
]


@pytest.mark.parametrize("case", ERROR_CASES)
def test_error_gives_one_clear_line_and_writes_nothing(
    case: str, fleet: Fleet, playbook: t.Callable[..., t.Any], tmp_path: Path
) -> None:
    variables, phrase = _error_case(case, fleet, tmp_path)
    before = snapshot(fleet.snow)
    fleet.snow.clear_requests()

    run = playbook(PLAYBOOKS / "user_cert.yml", extra_vars=variables, verbosity=3)
    logged = api_requests(fleet.snow)

    assert run.rc != 0
    result = run.task("Map the robots")
    message = result["msg"]
    assert phrase in message and "\n" not in message and "Traceback" not in message, (
        message
    )
    assert "exception" not in result or "Traceback" not in str(
        result.get("exception", "")
    )
    assert snapshot(fleet.snow) == before
    assert not [r for r in logged if r["method"] in WRITES and r["status"] < 300]
    if case in ("PEM with a private key", "expired certificate"):
        assert logged == []  # refused before any request
    for secret in (
        "not-the-password",
        "wrong-secret-value",
        fleet.snow.admin_password,
        fleet.snow.oauth_client_secret,
    ):
        assert secret not in run.stdout + run.stderr + str(run.results)


def test_a_refused_insert_leaves_no_orphan_attachment(
    fleet: Fleet, playbook: t.Callable[..., t.Any]
) -> None:
    mapping = {
        "user": "robot02",
        "name": "robot02 partial",
        "pem_content": pem(make_leaf("robot02", fleet.ca).cert),
    }
    before = snapshot(fleet.snow)
    fleet.snow.clear_requests()
    # The look-up is the first request on this path, the insert the second: only the insert fails.
    fleet.snow.inject(
        status=500, count=1, every=2, path_prefix="/api/now/table/sys_user_certificate"
    )
    try:
        run = playbook(
            PLAYBOOKS / "user_cert.yml",
            extra_vars={"sn": fleet.vars["sn"], "mappings": [mapping]},
        )
    finally:
        fleet.snow.clear_faults()
    logged = api_requests(fleet.snow)

    assert run.rc != 0
    message = run.task("Map the robots")["msg"]
    assert (
        message.startswith(
            "POST /api/now/table/sys_user_certificate failed with HTTP 500"
        )
        and "\n" not in message
    )
    # What to do, and that the attachment this run had written is gone again.
    assert (
        "check its system log (System Logs > Errors) for the cause, then run the task again"
        in message
    )
    assert message.endswith(
        "; the records and attachments this run had written were removed again, so nothing is left half-written"
    )
    attached = [
        r
        for r in logged
        if r["method"] == "POST" and r["path"] == "/api/now/attachment/file"
    ]
    assert [r["status"] for r in attached] == [201]
    assert any(
        r["method"] == "DELETE" and r["path"].startswith("/api/now/attachment/")
        for r in logged
    )
    assert snapshot(fleet.snow) == before


CHAIN_AND_CODE_SIGNING = """---
- name: Export a chain PEM and issue a code-signing certificate
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Export the robot's chain PEM for ServiceNow and its PKCS#12
      snowrpa.robot_certs.cert_export:
        certificate_path: "{{ out_dir }}/chainbot.pem"
        privatekey_path: "{{ out_dir }}/chainbot.key"
        chain_paths:
          - "{{ pki_dir }}/ca.pem"
        purpose: client_auth
        pem_path: "{{ out_dir }}/chainbot-chain.pem"
        pkcs12_path: "{{ out_dir }}/chainbot.p12"
        pkcs12_passphrase: "{{ pfx_passphrase }}"

    - name: Issue a code-signing certificate from the robot CA
      snowrpa.robot_certs.cert_generate:
        path: "{{ out_dir }}/signer.pem"
        privatekey_path: "{{ out_dir }}/signer.key"
        purpose: code_signing
        subject:
          common_name: chainbot
          organization_name: Test Org
        issuer_cert_path: "{{ pki_dir }}/ca.pem"
        issuer_privatekey_path: "{{ pki_dir }}/ca.key"
"""


def test_chain_pem_from_cert_export_is_accepted_and_unusable_certificates_refused(
    fleet: Fleet, playbook: t.Callable[..., t.Any], tmp_path: Path
) -> None:
    fleet.snow.create_robot_users(["chainbot"])
    robot = make_leaf("chainbot", fleet.ca)
    (tmp_path / "chainbot.pem").write_text(pem(robot.cert))
    (tmp_path / "chainbot.key").write_text(key_pem(robot.key))
    book = tmp_path / "chain.yml"
    book.write_text(CHAIN_AND_CODE_SIGNING)
    made = playbook(
        book,
        extra_vars={
            "pki_dir": str(fleet.work),
            "out_dir": str(tmp_path),
            "pfx_passphrase": PFX_PASSPHRASE,
        },
    )
    assert made.rc == 0, made.stdout + made.stderr
    chain = tmp_path / "chainbot-chain.pem"
    # openssl sees the leaf followed by its CA, as cert_export documents for ServiceNow.
    bundle = subprocess.run(
        ["openssl", "crl2pkcs7", "-nocrl", "-certfile", str(chain)],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    listed = subprocess.run(
        ["openssl", "pkcs7", "-print_certs", "-noout"],
        input=bundle,
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    assert listed.count("subject=") == 2
    before = snapshot(fleet.snow)
    variables = {
        "sn": fleet.vars["sn"],
        "mappings": [
            {"user": "chainbot", "name": "chainbot mTLS", "pem_path": str(chain)}
        ],
    }

    # The chain PEM is accepted; only the leaf is attached, and the robot logs in with it.
    mapped = playbook(PLAYBOOKS / "user_cert.yml", extra_vars=variables)
    assert mapped.rc == 0, mapped.stdout + mapped.stderr
    assert mapped.task("Map the robots")["mappings"][0]["action"] == "created"
    record = next(
        r
        for r in table(fleet.snow, "sys_user_certificate")
        if r["name"] == "chainbot mTLS"
    )
    attached = [
        a for a in attachments(fleet.snow) if a["table_sys_id"] == record["sys_id"]
    ]
    content = _download(fleet.snow, attached[0]["sys_id"])
    assert content.count(b"BEGIN CERTIFICATE") == 1
    assert x509.load_pem_x509_certificate(content) == robot.cert
    assert (
        fleet.snow.login_with_pkcs12(tmp_path / "chainbot.p12", PFX_PASSPHRASE)
        == "chainbot"
    )
    fleet.snow.clear_requests()
    again = playbook(PLAYBOOKS / "user_cert.yml", extra_vars=variables)
    assert again.rc == 0 and again.task("Map the robots")["changed"] is False
    assert {r["method"] for r in api_requests(fleet.snow)} == {"GET"}

    # Certificates that no robot presents in a TLS handshake are refused before any request.
    fleet.snow.clear_requests()
    for name, path in (
        ("signer", tmp_path / "signer.pem"),
        ("ca", fleet.work / "ca.pem"),
    ):
        refused = playbook(
            PLAYBOOKS / "user_cert.yml",
            extra_vars={
                "sn": fleet.vars["sn"],
                "mappings": [{"user": "chainbot", "name": name, "pem_path": str(path)}],
            },
        )
        message = refused.task("Map the robots")["msg"]
        assert refused.rc != 0 and "\n" not in message
        assert message.startswith(f"mapping chainbot/{name}: ")
        assert "client_auth certificate" in message
    assert api_requests(fleet.snow) == []

    removed = playbook(
        PLAYBOOKS / "user_cert.yml",
        extra_vars=dict(variables, mapping_state="absent"),
    )
    assert removed.rc == 0 and snapshot(fleet.snow) == before


CA_THEN_MAPPINGS = """---
- name: Register a CA, then map robots to certificates it issued
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  module_defaults:
    group/snowrpa.robot_certs.servicenow:
      instance: "{{ sn }}"
  tasks:
    - name: Register the CA
      snowrpa.robot_certs.snow_ca_register:
        name: "{{ ca_name }}"
        pem_content: "{{ ca_pem | default(omit) }}"
        state: "{{ ca_state | default('present') }}"
        publish_timeout: 30
        poll_interval: 0.2
      when: ca_pem is defined or ca_state is defined

    - name: Map the robots
      snowrpa.robot_certs.snow_user_cert:
        mappings: "{{ mappings }}"
        state: "{{ mapping_state | default('present') }}"
      when: mappings is defined
"""


def test_ca_record_given_another_ca_warns_and_stranded_mappings_fail_the_rerun(
    fleet: Fleet, playbook: t.Callable[..., t.Any], tmp_path: Path
) -> None:
    book = tmp_path / "ca_then_mappings.yml"
    book.write_text(CA_THEN_MAPPINGS)
    sn = fleet.vars["sn"]
    names = ["strand01", "strand02"]
    fleet.snow.create_robot_users(names)
    old_ca, new_ca = make_ca("Strand CA"), make_ca("Strand Successor CA")
    robots = {n: make_leaf(n, old_ca) for n in names}
    mappings = [
        {"user": n, "name": f"{n} mTLS", "pem_content": pem(r.cert)}
        for n, r in robots.items()
    ]
    before = snapshot(fleet.snow)
    first = playbook(
        book,
        extra_vars={
            "sn": sn,
            "ca_name": "Strand CA",
            "ca_pem": pem(old_ca.cert),
            "mappings": mappings,
        },
    )
    assert first.rc == 0, first.stdout + first.stderr
    (tmp_path / "strand01.pem").write_text(pem(robots["strand01"].cert))
    (tmp_path / "strand01.key").write_text(key_pem(robots["strand01"].key))
    assert (
        fleet.snow.login_with(tmp_path / "strand01.pem", tmp_path / "strand01.key")
        == "strand01"
    )

    # The same record name given another CA: replaced, with a warning counting the stranded mappings.
    swapped = playbook(
        book,
        extra_vars={"sn": sn, "ca_name": "Strand CA", "ca_pem": pem(new_ca.cert)},
    )
    assert swapped.rc == 0, swapped.stdout + swapped.stderr
    ca = swapped.task("Register the CA")
    assert ca["action"] == "replaced"
    assert ca["warnings"] == [
        "CA record Strand CA now holds O=Test Org,CN=Strand Successor CA; 2 active user mappings were issued by the "
        "old CA O=Test Org,CN=Strand CA and will be refused until re-issued"
    ]
    # The instance itself now refuses the robot, as the warning says.
    assert (
        fleet.snow.login_with(tmp_path / "strand01.pem", tmp_path / "strand01.key")
        != "strand01"
    )

    # An unchanged re-run of the mappings no longer reports them ok, and stays within its read budget.
    fleet.snow.clear_requests()
    rerun = playbook(
        book, extra_vars={"sn": sn, "ca_name": "Strand CA", "mappings": mappings}
    )
    logged = api_requests(fleet.snow)
    assert rerun.rc != 0
    message = rerun.task("Map the robots")["msg"]
    assert message.startswith(
        "2 mapping(s) (strand01/strand01 mTLS, strand02/strand02 mTLS) hold certificates issued by "
        "'O=Test Org,CN=Strand CA', which is no longer an active, published CA record on the instance"
    )
    assert "re-issue them from the registered CA" in message and "\n" not in message
    assert {r["method"] for r in logged} == {"GET"}
    assert len(logged) <= math.ceil(len(names) / 100) + 5, logged

    cleanup = playbook(
        book,
        extra_vars={
            "sn": sn,
            "ca_name": "Strand CA",
            "ca_state": "absent",
            "mappings": [{"user": n, "name": f"{n} mTLS"} for n in names],
            "mapping_state": "absent",
        },
    )
    assert cleanup.rc == 0, cleanup.stdout + cleanup.stderr
    assert snapshot(fleet.snow) == before


PROPERTY_AND_PREFLIGHT = """---
- name: Set a property, then check the instance
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  module_defaults:
    group/snowrpa.robot_certs.servicenow:
      instance: "{{ sn }}"
  tasks:
    - name: Set the property
      snowrpa.robot_certs.snow_property:
        name: "{{ prop_name }}"
        value: "{{ prop_value }}"
        type: "{{ prop_type | default('string') }}"
        create: "{{ prop_create | default(false) }}"
      when: prop_name is defined

    - name: Check the instance
      snowrpa.robot_certs.snow_cba_info:
      when: preflight | default(false)
"""


def test_property_create_switch_canonical_booleans_and_preflight_flag(
    fleet: Fleet, playbook: t.Callable[..., t.Any], tmp_path: Path
) -> None:
    book = tmp_path / "property.yml"
    book.write_text(PROPERTY_AND_PREFLIGHT)
    sn = fleet.vars["sn"]
    names_before = {r["name"] for r in table(fleet.snow, "sys_properties")}

    # A misspelt name fails and creates nothing.
    fleet.snow.clear_requests()
    typo = playbook(
        book,
        extra_vars={
            "sn": sn,
            "prop_name": "glide.authenticate.mutual.enabeld",
            "prop_value": "true",
        },
    )
    assert typo.rc != 0
    assert typo.task("Set the property")["msg"] == (
        "property glide.authenticate.mutual.enabeld does not exist on the instance; check the name, "
        "or set create: true to create it"
    )
    assert {r["method"] for r in api_requests(fleet.snow)} == {"GET"}
    assert {r["name"] for r in table(fleet.snow, "sys_properties")} == names_before

    # "True" for a boolean property holding "true" is the same value: no write.
    fleet.snow.clear_requests()
    same = playbook(
        book,
        extra_vars={
            "sn": sn,
            "prop_name": "glide.authenticate.mutual.enabled",
            "prop_value": "True",
        },
    )
    assert same.rc == 0 and same.task("Set the property")["changed"] is False
    assert {r["method"] for r in api_requests(fleet.snow)} == {"GET"}

    # A non-canonical value written behind the module's back is flagged, and the module writes it canonically.
    websocket = next(
        r
        for r in table(fleet.snow, "sys_properties")
        if r["name"] == "glide.cometd.websocket.enabled"
    )
    status, _headers, _body = fleet.snow.call(
        "PATCH",
        f"/api/now/table/sys_properties/{websocket['sys_id']}",
        {"value": "True"},
    )
    assert status == 200
    flagged = playbook(book, extra_vars={"sn": sn, "preflight": True})
    assert flagged.rc == 0
    assert (
        "glide.cometd.websocket.enabled is 'True', not the canonical true or false of a boolean property; "
        "set it with snow_property"
    ) in flagged.task("Check the instance")["problems"]
    fixed = playbook(
        book,
        extra_vars={
            "sn": sn,
            "prop_name": "glide.cometd.websocket.enabled",
            "prop_value": "yes",
            "preflight": True,
        },
    )
    assert fixed.rc == 0 and fixed.task("Set the property")["changed"] is True
    stored = {r["name"]: r["value"] for r in table(fleet.snow, "sys_properties")}
    assert stored["glide.cometd.websocket.enabled"] == "true"
    assert not any(
        "canonical" in p for p in fixed.task("Check the instance")["problems"]
    )

    # With create, a new property is made.
    made = playbook(
        book,
        extra_vars={
            "sn": sn,
            "prop_name": "x_test.robot_certs.managed",
            "prop_value": "On",
            "prop_type": "true|false",
            "prop_create": True,
        },
    )
    assert made.rc == 0 and made.task("Set the property")["changed"] is True
    created = next(
        r
        for r in table(fleet.snow, "sys_properties")
        if r["name"] == "x_test.robot_certs.managed"
    )
    assert created["value"] == "true" and created["type"] == "true|false"


PROPERTY_LIST = """---
- name: Set several properties in one call
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  module_defaults:
    group/snowrpa.robot_certs.servicenow:
      instance: "{{ sn }}"
  tasks:
    - name: Set the properties
      snowrpa.robot_certs.snow_property:
        properties: "{{ props }}"
        create: "{{ props_create | default(false) }}"
      diff: true
"""


def test_property_list_reads_once_writes_the_differences_and_fails_whole(
    fleet: Fleet, playbook: t.Callable[..., t.Any], tmp_path: Path
) -> None:
    book = tmp_path / "properties.yml"
    book.write_text(PROPERTY_LIST)
    sn = fleet.vars["sn"]
    props = [
        {"name": "glide.cometd.websocket.enabled", "value": "true"},
        {"name": "x_test.robot_certs.list_one", "value": "first"},
        {"name": "x_test.robot_certs.list_two", "value": "second"},
    ]

    fleet.snow.clear_requests()
    made = playbook(book, extra_vars={"sn": sn, "props": props, "props_create": True})
    assert made.rc == 0, made.stdout + made.stderr
    task = made.task("Set the properties")
    assert task["changed"] is True
    assert set(task["diff"]["after"]) == {
        "x_test.robot_certs.list_one",
        "x_test.robot_certs.list_two",
    }
    reads = [r for r in api_requests(fleet.snow) if r["method"] == "GET"]
    assert len(reads) == 1 and "nameIN" in reads[0]["query"], reads
    assert [r["method"] for r in api_requests(fleet.snow)].count("POST") == 2
    stored = {r["name"]: r["value"] for r in table(fleet.snow, "sys_properties")}
    assert stored["x_test.robot_certs.list_one"] == "first"
    assert stored["x_test.robot_certs.list_two"] == "second"

    # Unchanged: one request in all.
    fleet.snow.clear_requests()
    again = playbook(book, extra_vars={"sn": sn, "props": props})
    assert again.rc == 0 and again.task("Set the properties")["changed"] is False
    assert [r["method"] for r in api_requests(fleet.snow)] == ["GET"]

    # One misspelt name among valid changes: one line, nothing written.
    fleet.snow.clear_requests()
    changes = [
        {"name": "x_test.robot_certs.list_one", "value": "changed"},
        {"name": "x_test.robot_certs.list_thre", "value": "third"},
    ]
    typo = playbook(book, extra_vars={"sn": sn, "props": changes})
    assert typo.rc != 0
    assert typo.task("Set the properties")["msg"] == (
        "property x_test.robot_certs.list_thre does not exist on the instance; check the name, "
        "or set create: true to create it"
    )
    assert {r["method"] for r in api_requests(fleet.snow)} == {"GET"}
    stored = {r["name"]: r["value"] for r in table(fleet.snow, "sys_properties")}
    assert stored["x_test.robot_certs.list_one"] == "first"


PREFLIGHT_MODES = """---
- name: Check the instance in each mode
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  module_defaults:
    group/snowrpa.robot_certs.servicenow:
      instance: "{{ sn }}"
  tasks:
    - name: Check the instance
      snowrpa.robot_certs.snow_cba_info:
        mode: "{{ mode }}"
"""


def test_preflight_auto_reads_only_the_plugin_of_an_instance_set_up(
    fleet: Fleet, playbook: t.Callable[..., t.Any], tmp_path: Path
) -> None:
    book = tmp_path / "modes.yml"
    book.write_text(PREFLIGHT_MODES)
    sn = fleet.vars["sn"]

    fleet.snow.clear_requests()
    quick = playbook(book, extra_vars={"sn": sn, "mode": "auto"})
    assert quick.rc == 0, quick.stdout + quick.stderr
    assert [r["path"] for r in api_requests(fleet.snow)] == ["/api/now/table/v_plugin"]
    facts = quick.task("Check the instance")["facts"]
    assert facts["checked"] == "plugin" and facts["plugin"]["active"] is True
    assert facts["supports_tls"] is None

    fleet.snow.clear_requests()
    full = playbook(book, extra_vars={"sn": sn, "mode": "full"})
    assert full.rc == 0, full.stdout + full.stderr
    paths = {r["path"] for r in api_requests(fleet.snow)}
    assert {"/adcv2/supports_tls", "/api/now/table/sys_user_has_role"} <= paths
    assert full.task("Check the instance")["facts"]["checked"] == "full"
