"""The ServiceNow test double behaves as docs/servicenow-api.md says, over real HTTPS and mTLS.

No Ansible here: plain urllib/http.client with an ssl context trusting the double's CA, and
openssl for the independent checks (certificate fields, a real mTLS handshake).
"""

from __future__ import annotations

import base64
import concurrent.futures
import datetime
import hashlib
import http.client
import json
import re
import socket
import sqlite3
import ssl
import subprocess
import time
import typing as t
import urllib.parse
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The fixtures snow_instance and snow_instance_factory come from tests/conftest.py.
from tests.servicenow_double.fixture import SnowInstance

SYS_ID = re.compile(r"^[0-9a-f]{32}$")
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
NOW = datetime.datetime.now(datetime.UTC)


# Certificates for the tests, made with cryptography and checked with openssl.
class Pair(t.NamedTuple):
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def files(self, directory: Path, stem: str) -> tuple[Path, Path]:
        cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
        cert_path.write_bytes(self.pem())
        key_path.write_bytes(self.key_pem())
        key_path.chmod(0o600)
        return cert_path, key_path


def make_cert(
    cn: str,
    issuer: Pair | None = None,
    *,
    ca: bool = False,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> Pair:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Robots"),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - datetime.timedelta(days=1))
        .not_valid_after(not_after or NOW + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return Pair(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)


def openssl_field(pem: bytes, option: str) -> str:
    """One field as openssl prints it, e.g. -subject with RFC 2253 names or -enddate."""
    out = subprocess.run(
        ["openssl", "x509", "-noout", option, "-nameopt", "RFC2253"],
        input=pem,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return out.split("=", 1)[1].strip()


# Small API helpers.
def post_record(
    snow: SnowInstance, table: str, body: dict[str, t.Any]
) -> tuple[int, t.Any]:
    status, _headers, parsed = snow.call("POST", f"/api/now/table/{table}", body)
    return status, parsed


def attach(
    snow: SnowInstance,
    table: str,
    sys_id: str,
    content: bytes,
) -> tuple[int, t.Any]:
    query = urllib.parse.urlencode(
        {"table_name": table, "table_sys_id": sys_id, "file_name": "cert.pem"}
    )
    headers = {"Content-Type": "application/x-pem-file"}
    status, _headers, parsed = snow.call(
        "POST", f"/api/now/attachment/file?{query}", raw=content, headers=headers
    )
    return status, parsed


def record(snow: SnowInstance, table: str, sys_id: str) -> dict[str, t.Any]:
    status, _headers, parsed = snow.call("GET", f"/api/now/table/{table}/{sys_id}")
    assert status == 200, parsed
    return parsed["result"]


def wait_for(predicate: t.Callable[[], t.Any], timeout: float = 10.0) -> t.Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def activate_mutual_auth(snow: SnowInstance) -> list[str]:
    """Activate the plugin through the CI/CD API; answers the progress statuses seen."""
    status, _headers, parsed = snow.call(
        "POST", "/api/sn_cicd/plugin/com.glide.auth.mutual/activate"
    )
    assert status == 200, parsed
    progress_id = parsed["result"]["links"]["progress"]["id"]
    seen = [parsed["result"]["status"]]
    while seen[-1] not in ("2", "3", "4"):
        time.sleep(0.05)
        _status, _headers, parsed = snow.call(
            "GET", f"/api/sn_cicd/progress/{progress_id}"
        )
        seen.append(parsed["result"]["status"])
    return seen


def register_ca(
    snow: SnowInstance, pem: bytes, name: str, *, attach_first: bool = True
) -> str:
    if attach_first:
        sys_id = hashlib.md5(name.encode()).hexdigest()  # noqa: S324 - a chosen sys_id, not security
        assert attach(snow, "sys_ca_certificate", sys_id, pem)[0] == 201
        status, parsed = post_record(
            snow,
            "sys_ca_certificate",
            {"sys_id": sys_id, "name": name, "type": "ca_cert"},
        )
    else:
        status, parsed = post_record(snow, "sys_ca_certificate", {"name": name})
        assert status == 201
        sys_id = parsed["result"]["sys_id"]
        status, parsed = attach(snow, "sys_ca_certificate", sys_id, pem)
    assert status == 201, parsed
    return sys_id


def publish_status(snow: SnowInstance, sys_id: str) -> str:
    return str(record(snow, "sys_ca_certificate", sys_id)["publish_status"])


def map_cert(
    snow: SnowInstance,
    user_sys_id: str,
    pem: bytes,
    name: str,
    *,
    attach_first: bool = True,
) -> tuple[int, t.Any]:
    """Map PEM to a user; answers the status and body of the request that completes the mapping."""
    body = {"name": name, "user": user_sys_id, "active": True}
    if attach_first:
        sys_id = hashlib.md5(name.encode()).hexdigest()  # noqa: S324 - a chosen sys_id, not security
        assert attach(snow, "sys_user_certificate", sys_id, pem)[0] == 201
        return post_record(snow, "sys_user_certificate", {**body, "sys_id": sys_id})
    status, parsed = post_record(snow, "sys_user_certificate", body)
    assert status == 201, parsed
    return attach(snow, "sys_user_certificate", parsed["result"]["sys_id"], pem)


@pytest.fixture(scope="module")
def pki() -> dict[str, Pair]:
    root = make_cert("Robot Root CA", ca=True)
    other = make_cert("Other CA", ca=True)
    return {
        "root": root,
        "other": other,
        "robot01": make_cert("robot01", root),
        "robot02": make_cert("robot02", root),
        "unmapped": make_cert("robot99", root),
        "foreign": make_cert("robot01", other),
        # Same issuer name as the robot root, another key: names alone must not be trusted.
        "forged": make_cert("robot01", make_cert("Robot Root CA", ca=True)),
        "selfsigned": make_cert("robot-self"),
        "selfsigned_ca": make_cert("robot-self-ca"),
        "expired": make_cert(
            "robot-old",
            root,
            not_before=NOW - datetime.timedelta(days=30),
            not_after=NOW - datetime.timedelta(days=1),
        ),
    }


@pytest.fixture(scope="module")
def mutual(
    snow_instance_factory: t.Callable[..., SnowInstance], pki: dict[str, Pair]
) -> SnowInstance:
    """A double with the plugin active and the robot root CA registered and published."""
    snow = snow_instance_factory(plugin_delay=0.2, publish_delay=0.4)
    assert activate_mutual_auth(snow)[-1] == "2"
    ca_id = register_ca(snow, pki["root"].pem(), "Robot Root CA")
    wait_for(lambda: publish_status(snow, ca_id) == "exists")
    return snow


# Pre-flight, authentication.
def test_every_answer_says_snow_adc_and_supports_tls(
    snow_instance: SnowInstance,
) -> None:
    status, headers, body = snow_instance.call("GET", "/adcv2/supports_tls", auth=False)
    assert (status, body) == (200, "true")
    assert headers["Server"] == "snow_adc"
    for path, auth in (
        ("/api/now/table/sys_user", False),
        ("/api/now/table/no_such_table", True),
        ("/nowhere", True),
    ):
        status, headers, _body = snow_instance.call("GET", path, auth=auth)
        assert status in (400, 401, 404)
        assert headers["Server"] == "snow_adc"


def test_basic_oauth_and_api_key(snow_instance: SnowInstance) -> None:
    status, headers, body = snow_instance.call(
        "GET", "/api/now/table/sys_user", auth=False
    )
    assert (
        status == 401
        and body["status"] == "failure"
        and body["error"]["message"] == "User Not Authenticated"
    )
    assert "WWW-Authenticate" in headers
    assert (
        snow_instance.call(
            "GET", "/api/now/table/sys_user", user="admin", password="wrong"
        )[0]
        == 401
    )

    def token(form: dict[str, str]) -> tuple[int, t.Any]:
        raw = urllib.parse.urlencode(form).encode()
        status, _headers, body = snow_instance.call(
            "POST",
            "/oauth_token.do",
            raw=raw,
            auth=False,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        return status, body

    client = {
        "client_id": snow_instance.oauth_client_id,
        "client_secret": snow_instance.oauth_client_secret,
    }
    status, grant = token(
        {
            "grant_type": "password",
            **client,
            "username": snow_instance.no_sso_user,
            "password": snow_instance.no_sso_password,
        }
    )
    assert status == 200 and grant["token_type"] == "Bearer" and grant["expires_in"] > 0
    status, _headers, me = snow_instance.call(
        "GET",
        "/api/now/ui/user/current_user",
        auth=False,
        headers={"Authorization": f"Bearer {grant['access_token']}"},
    )
    assert (status, me["result"]["user_name"]) == (200, snow_instance.no_sso_user)

    status, grant = token({"grant_type": "client_credentials", **client})
    assert status == 200
    status, _headers, me = snow_instance.call(
        "GET",
        "/api/now/ui/user/current_user",
        auth=False,
        headers={"Authorization": f"Bearer {grant['access_token']}"},
    )
    assert me["result"]["user_name"] == "admin"

    status, refused = token(
        {
            "grant_type": "client_credentials",
            "client_id": snow_instance.oauth_client_id,
            "client_secret": "nope",
        }
    )
    assert status == 401 and refused["error"] == "access_denied"
    assert (
        snow_instance.call(
            "GET",
            "/api/now/table/sys_user",
            auth=False,
            headers={"Authorization": "Bearer forged"},
        )[0]
        == 401
    )

    status, _headers, body = snow_instance.call(
        "GET",
        "/api/now/table/sys_properties",
        auth=False,
        headers={"x-sn-apikey": snow_instance.api_key},
    )
    assert status == 200 and body["result"]


# Table API.
def test_table_api_envelopes_statuses_and_strings(snow_instance: SnowInstance) -> None:
    status, created = post_record(
        snow_instance,
        "sys_user",
        {"user_name": "env01", "name": "Env One", "active": True, "no_such_field": "x"},
    )
    assert status == 201
    result = created["result"]
    assert SYS_ID.match(result["sys_id"]) and STAMP.match(result["sys_created_on"])
    assert result["active"] == "true" and result["sys_mod_count"] == "0"
    assert "no_such_field" not in result and "user_password" not in result
    assert all(isinstance(v, str) for v in result.values())
    path = f"/api/now/table/sys_user/{result['sys_id']}"

    status, _headers, patched = snow_instance.call("PATCH", path, {"active": False})
    assert (
        status == 200
        and patched["result"]["active"] == "false"
        and patched["result"]["sys_mod_count"] == "1"
    )
    status, _headers, body = snow_instance.call("DELETE", path)
    assert (status, body) == (204, None)
    status, _headers, body = snow_instance.call("GET", path)
    assert (
        status == 404
        and body["error"]["message"] == "No Record found"
        and body["status"] == "failure"
    )

    status, _headers, body = snow_instance.call("GET", "/api/now/table/no_such_table")
    assert status == 404 and body["error"]["message"] == "Invalid table no_such_table"
    status, _headers, body = snow_instance.call(
        "POST",
        "/api/now/table/sys_user",
        raw=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert status == 400 and body["status"] == "failure"

    given = "0123456789abcdef0123456789abcdef"
    status, created = post_record(
        snow_instance, "sys_user", {"sys_id": given, "user_name": "env02"}
    )
    assert status == 201 and created["result"]["sys_id"] == given


def test_queries_pagination_dot_walk_and_display_values(
    snow_instance: SnowInstance,
) -> None:
    names = [f"page{n:02d}" for n in range(7)]
    ids = snow_instance.create_robot_users(names)
    base = "/api/now/table/sys_user?" + urllib.parse.urlencode(
        {
            "sysparm_query": "user_nameSTARTSWITHpage^ORDERBYuser_name",
            "sysparm_fields": "user_name,sys_id",
            "sysparm_limit": "3",
        }
    )
    status, headers, body = snow_instance.call("GET", base)
    assert status == 200 and headers["X-Total-Count"] == "7"
    links = dict(
        (rel, url) for url, rel in re.findall(r'<([^>]+)>;rel="(\w+)"', headers["Link"])
    )
    assert {"first", "next", "last"} <= set(links) and "prev" not in links

    seen = [r["user_name"] for r in body["result"]]
    while "next" in links:
        status, headers, body = snow_instance.call(
            "GET", links["next"].removeprefix(snow_instance.url)
        )
        seen += [r["user_name"] for r in body["result"]]
        links = dict(
            (rel, url)
            for url, rel in re.findall(
                r'<([^>]+)>;rel="(\w+)"', headers.get("Link", "")
            )
        )
        assert "prev" in links
    assert seen == names

    def users(query: str, **extra: str) -> list[str]:
        params = {"sysparm_query": query, "sysparm_fields": "user_name", **extra}
        status, _headers, body = snow_instance.call(
            "GET", "/api/now/table/sys_user?" + urllib.parse.urlencode(params)
        )
        assert status == 200, body
        return [r["user_name"] for r in body["result"]]

    assert users("user_name=page01^ORuser_name=page03") == ["page01", "page03"]
    assert users("user_nameINpage02,page04^ORDERBYDESCuser_name") == [
        "page04",
        "page02",
    ]
    # A condition on an unknown field is ignored, not an error and not an empty answer.
    assert users("no_such_field=x^user_name=page05") == ["page05"]
    assert users(
        "user_nameSTARTSWITHpage^user_name!=page00^user_nameNOT INpage01,page02"
    ) == ["page03", "page04", "page05", "page06"]

    params = {
        "sysparm_query": "user.user_name=page06",
        "sysparm_fields": "user.user_name,role.name,role,user",
    }
    status, _headers, body = snow_instance.call(
        "GET", "/api/now/table/sys_user_has_role?" + urllib.parse.urlencode(params)
    )
    (row,) = body["result"]
    assert (
        row["user.user_name"] == "page06" and row["role.name"] == "sn_rpa_fdn.rpa_robot"
    )
    assert row["user"]["value"] == ids["page06"] and row["user"]["link"].endswith(
        f"/api/now/table/sys_user/{ids['page06']}"
    )

    status, _headers, body = snow_instance.call(
        "GET",
        "/api/now/table/sys_user_has_role?"
        + urllib.parse.urlencode({**params, "sysparm_display_value": "true"}),
    )
    assert (
        body["result"][0]["user"] == "page06"
        and body["result"][0]["role"] == "sn_rpa_fdn.rpa_robot"
    )
    status, _headers, body = snow_instance.call(
        "GET",
        "/api/now/table/sys_user_has_role?"
        + urllib.parse.urlencode({**params, "sysparm_display_value": "all"}),
    )
    assert (
        body["result"][0]["user"]["display_value"] == "page06"
        and body["result"][0]["user"]["value"] == ids["page06"]
    )
    status, _headers, body = snow_instance.call(
        "GET",
        "/api/now/table/sys_user_has_role?"
        + urllib.parse.urlencode({**params, "sysparm_exclude_reference_link": "true"}),
    )
    assert body["result"][0]["user"] == ids["page06"]


# Plugin, roles, certificate records.
def test_plugin_activation_creates_the_certificate_tables(
    snow_instance_factory: t.Callable[..., SnowInstance],
) -> None:
    snow = snow_instance_factory(plugin_delay=0.6)
    assert snow.call("GET", "/api/now/table/sys_ca_certificate")[0] == 404
    _status, _headers, plugin = snow.call(
        "GET", "/api/now/table/v_plugin?sysparm_query=id=com.glide.auth.mutual"
    )
    assert plugin["result"][0]["active"] == "inactive"

    seen = activate_mutual_auth(snow)
    assert seen[0] == "0" and "1" in seen and seen[-1] == "2" and len(seen) >= 4
    _status, _headers, plugin = snow.call(
        "GET", "/api/now/table/v_plugin?sysparm_query=id=com.glide.auth.mutual"
    )
    assert plugin["result"][0]["active"] == "active"
    _status, _headers, tables = snow.call(
        "GET", "/api/now/table/sys_db_object?sysparm_query=name=sys_ca_certificate"
    )
    assert len(tables["result"]) == 1
    status, _headers, body = snow.call("GET", "/api/now/table/sys_ca_certificate")
    assert (status, body) == (200, {"result": []})

    status, _headers, body = snow.call(
        "GET",
        "/api/now/table/sys_ca_certificate",
        user=snow.no_sso_user,
        password=snow.no_sso_password,
    )
    assert status == 403 and "sso_config_admin" in body["error"]["detail"]
    assert (
        snow.call(
            "GET",
            "/api/now/table/sys_user",
            user=snow.no_sso_user,
            password=snow.no_sso_password,
        )[0]
        == 200
    )

    # The role rule covers the attachments of certificate records too.
    query = urllib.parse.urlencode(
        {
            "table_name": "sys_ca_certificate",
            "table_sys_id": "a" * 32,
            "file_name": "ca.pem",
        }
    )
    status, _headers, body = snow.call(
        "POST",
        f"/api/now/attachment/file?{query}",
        raw=b"pem",
        headers={"Content-Type": "application/x-pem-file"},
        user=snow.no_sso_user,
        password=snow.no_sso_password,
    )
    assert status == 403
    _status, _headers, columns = snow.call(
        "GET",
        "/api/now/table/sys_dictionary?sysparm_query=name=sys_ca_certificate^element=publish_status",
    )
    assert columns["result"][0]["internal_type"] == "choice"
    _status, _headers, choices = snow.call(
        "GET",
        "/api/now/table/sys_choice?sysparm_query=name=sys_ca_certificate^element=publish_status",
    )
    assert sorted(c["value"] for c in choices["result"]) == [
        "exists",
        "failed",
        "pending",
    ]

    status, _headers, failed = snow.call(
        "POST", "/api/sn_cicd/plugin/com.example.missing/activate"
    )
    progress = failed["result"]["links"]["progress"]["id"]
    _status, _headers, failed = snow.call("GET", f"/api/sn_cicd/progress/{progress}")
    assert (
        failed["result"]["status"] == "3"
        and "com.example.missing" in failed["result"]["error"]
    )


def test_ca_record_takes_fields_from_the_pem_and_publishes(
    mutual: SnowInstance, pki: dict[str, Pair]
) -> None:
    pem = pki["other"].pem()
    sys_id = register_ca(mutual, pem, "Other CA", attach_first=False)
    ca = record(mutual, "sys_ca_certificate", sys_id)
    assert ca["publish_status"] == "pending"
    assert ca["subject"] == openssl_field(pem, "-subject") and ca[
        "issuer"
    ] == openssl_field(pem, "-issuer")
    enddate = datetime.datetime.strptime(
        openssl_field(pem, "-enddate"), "%b %d %H:%M:%S %Y %Z"
    )
    assert ca["valid_to"] == enddate.strftime("%Y-%m-%d %H:%M:%S")
    assert (
        STAMP.match(ca["valid_from"])
        and ca["type"] == "ca_cert"
        and ca["format"] == "pem"
        and ca["active"] == "true"
    )
    wait_for(lambda: publish_status(mutual, sys_id) == "exists")

    _status, _headers, listed = mutual.call(
        "GET",
        "/api/now/attachment?"
        + urllib.parse.urlencode({"sysparm_query": f"table_sys_id={sys_id}"}),
    )
    (attachment,) = listed["result"]
    assert attachment["hash"] == hashlib.sha256(pem).hexdigest() and attachment[
        "size_bytes"
    ] == str(len(pem))
    status, _headers, content = mutual.call(
        "GET", f"/api/now/attachment/{attachment['sys_id']}/file"
    )
    assert content.encode() == pem
    junk_query = urllib.parse.urlencode(
        {
            "table_name": "sys_ca_certificate",
            "table_sys_id": sys_id,
            "file_name": "extra.txt",
        }
    )
    status, _headers, extra = mutual.call(
        "POST",
        f"/api/now/attachment/file?{junk_query}",
        raw=b"x",
        headers={"Content-Type": "text/plain"},
    )
    assert status == 201
    assert mutual.call("DELETE", f"/api/now/attachment/{extra['result']['sys_id']}")[
        :3:2
    ] == (204, None)
    assert (
        mutual.call("GET", f"/api/now/attachment/{extra['result']['sys_id']}")[0] == 404
    )
    mutual.call(
        "PATCH", f"/api/now/table/sys_ca_certificate/{sys_id}", {"active": False}
    )  # leave only the robot root active

    keyed = register_ca(mutual, pem + pki["other"].key_pem(), "CA with a key")
    assert publish_status(mutual, keyed) == "failed"
    junk = register_ca(
        mutual,
        b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
        "Broken CA",
    )
    assert publish_status(mutual, junk) == "failed"
    # urllib always adds a Content-Type to a POST, so send this one with http.client.
    connection = http.client.HTTPSConnection(
        mutual.host, context=mutual.ssl_context(), timeout=10
    )
    auth = base64.b64encode(
        f"{mutual.admin_user}:{mutual.admin_password}".encode()
    ).decode()
    query = urllib.parse.urlencode(
        {
            "table_name": "sys_ca_certificate",
            "table_sys_id": sys_id,
            "file_name": "x.pem",
        }
    )
    connection.request(
        "POST",
        f"/api/now/attachment/file?{query}",
        body=pem,
        headers={"Authorization": f"Basic {auth}", "Accept": "application/json"},
    )
    answer = connection.getresponse()
    assert (
        answer.status == 400
        and "Content-Type" in json.loads(answer.read())["error"]["message"]
    )
    connection.close()


def test_user_mapping_accepted_only_when_it_chains_to_a_published_ca(
    mutual: SnowInstance, pki: dict[str, Pair], tmp_path: Path
) -> None:
    user = mutual.create_robot_user("map01")
    status, body = map_cert(mutual, user, pki["robot02"].pem(), "robot02 attach first")
    assert status == 201 and body["result"]["active"] == "true"
    assert body["result"]["subject"] == openssl_field(pki["robot02"].pem(), "-subject")
    status, body = map_cert(
        mutual, user, pki["robot01"].pem(), "robot01 insert first", attach_first=False
    )
    assert status == 201 and body["result"]["table_name"] == "sys_user_certificate"

    refusals = {
        "foreign": "issuer not a registered CA",
        "forged": "issuer not a registered CA",
        "selfsigned": "self-signed certificate not registered as a CA",
        "expired": "certificate expired",
    }
    for which, reason in refusals.items():
        for attach_first in (True, False):
            status, body = map_cert(
                mutual,
                user,
                pki[which].pem(),
                f"{which} {attach_first}",
                attach_first=attach_first,
            )
            assert status == 400 and body["error"]["detail"] == reason, body
            assert reason in body["error"]["message"]
    status, body = map_cert(
        mutual, user, pki["robot01"].pem() + pki["robot01"].key_pem(), "with key"
    )
    assert status == 400 and "private key" in body["error"]["message"]
    # A refused mapping leaves no record behind.
    _status, _headers, mapped = mutual.call(
        "GET",
        f"/api/now/table/sys_user_certificate?sysparm_query=user={user}^subjectISNOTEMPTY",
    )
    assert len(mapped["result"]) == 2

    # The same self-signed certificate registered as a CA may then be mapped.
    ca_id = register_ca(mutual, pki["selfsigned_ca"].pem(), "robot-self-ca as CA")
    status, body = map_cert(
        mutual, user, pki["selfsigned_ca"].pem(), "self-signed, registered too early"
    )
    assert status == 400 and body["error"]["detail"] == "issuer CA not published yet"
    wait_for(lambda: publish_status(mutual, ca_id) == "exists")
    assert (
        map_cert(mutual, user, pki["selfsigned_ca"].pem(), "self-signed, registered")[0]
        == 201
    )
    assert mutual.login_with(*pki["selfsigned_ca"].files(tmp_path, "self")) == "map01"


# Mutual TLS.
def test_mtls_login_as_the_mapped_user_and_401_reasons(
    mutual: SnowInstance, pki: dict[str, Pair], tmp_path: Path
) -> None:
    robot03, robot04 = (
        make_cert("robot03", pki["root"]),
        make_cert("robot04", pki["root"]),
    )
    users = mutual.create_robot_users(["mtls03", "mtls04"])
    status, body = map_cert(
        mutual, users["mtls03"], robot03.pem(), "mtls03 cert", attach_first=False
    )
    assert status == 201
    mapping = body["result"]["table_sys_id"]
    assert map_cert(mutual, users["mtls04"], robot04.pem(), "mtls04 cert")[0] == 201

    cert_path, key_path = robot03.files(tmp_path, "robot03")
    assert mutual.login_with(cert_path, key_path) == "mtls03"
    assert mutual.login_with(None) == "no client certificate"
    assert (
        mutual.login_with(*pki["foreign"].files(tmp_path, "foreign"))
        == "issuer not a registered CA"
    )
    assert (
        mutual.login_with(*pki["unmapped"].files(tmp_path, "unmapped"))
        == "certificate not mapped"
    )
    assert (
        mutual.login_with(*pki["expired"].files(tmp_path, "expired"))
        == "certificate expired"
    )

    p12 = tmp_path / "robot04.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"robot04",
            robot04.key,
            robot04.cert,
            None,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
    )
    assert mutual.login_with_pkcs12(p12, "s3cret") == "mtls04"

    # An independent client: openssl s_client presenting the robot's key and certificate.
    netloc = urllib.parse.urlsplit(mutual.mtls_url).netloc
    request = f"GET /api/now/ui/user/current_user HTTP/1.1\r\nHost: {netloc}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    out = subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            netloc,
            "-CAfile",
            mutual.ca_path,
            "-cert",
            str(cert_path),
            "-key",
            str(key_path),
            "-quiet",
        ],
        input=request.encode(),
        capture_output=True,
        timeout=20,
        check=False,
    ).stdout.decode()
    assert "HTTP/1.1 200" in out and f'"user_sys_id": "{users["mtls03"]}"' in out

    assert (
        mutual.call(
            "PATCH",
            f"/api/now/table/sys_user_certificate/{mapping}",
            {"active": "false"},
        )[0]
        == 200
    )
    assert mutual.login_with(cert_path, key_path) == "mapping inactive"
    _status, _headers, cas = mutual.call(
        "GET", "/api/now/table/sys_ca_certificate?sysparm_query=name=Robot%20Root%20CA"
    )
    root_id = cas["result"][0]["sys_id"]
    mutual.call(
        "PATCH", f"/api/now/table/sys_ca_certificate/{root_id}", {"active": False}
    )
    try:
        assert mutual.login_with_pkcs12(p12, "s3cret") == "issuer not a registered CA"
    finally:
        mutual.call(
            "PATCH", f"/api/now/table/sys_ca_certificate/{root_id}", {"active": True}
        )
    assert mutual.login_with_pkcs12(p12, "s3cret") == "mtls04"


def test_a_mapped_certificate_that_expires_is_refused(
    mutual: SnowInstance, pki: dict[str, Pair], tmp_path: Path
) -> None:
    short = make_cert(
        "robot-short",
        pki["root"],
        not_after=datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=2),
    )
    user = mutual.create_robot_user("short01")
    assert map_cert(mutual, user, short.pem(), "short lived")[0] == 201
    files = short.files(tmp_path, "short")
    assert mutual.login_with(*files) == "short01"
    time.sleep(
        max(
            0.0,
            (
                short.cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
            ).total_seconds(),
        )
        + 1.1
    )
    assert mutual.login_with(*files) == "certificate expired"


# State, faults, request log, robustness.
def test_restart_keeps_every_record(
    snow_instance_factory: t.Callable[..., SnowInstance],
) -> None:
    snow = snow_instance_factory()
    sys_id = snow.create_robot_user("persist01")
    url, password = snow.url, snow.admin_password
    snow.restart()
    assert (snow.url, snow.admin_password) == (url, password)
    assert record(snow, "sys_user", sys_id)["user_name"] == "persist01"
    snow.stop()
    assert snow.returncode == 0 and not snow.ready_file.exists()


def test_fault_injection(snow_instance: SnowInstance) -> None:
    snow_instance.inject(
        429, count=2, path_prefix="/api/now/table/sys_properties", retry_after=3
    )
    answers = [
        snow_instance.call("GET", "/api/now/table/sys_properties")
        for _attempt in range(3)
    ]
    assert [a[0] for a in answers] == [429, 429, 200]
    headers = answers[0][1]
    assert (
        headers["Retry-After"] == "3"
        and headers["X-RateLimit-Remaining"] == "0"
        and int(headers["X-RateLimit-Reset"]) > time.time()
    )
    assert answers[0][2]["status"] == "failure" and headers["Server"] == "snow_adc"

    snow_instance.inject(503, count=2, path_prefix="/api/now/table/sys_user_role")
    assert (
        snow_instance.call("GET", "/api/now/table/sys_properties")[0] == 200
    )  # another path: untouched
    assert [
        snow_instance.call("GET", "/api/now/table/sys_user_role")[0]
        for _attempt in range(3)
    ] == [503, 503, 200]

    snow_instance.inject(
        429, count=None, every=3, path_prefix="/api/now/table/sys_db_object"
    )
    try:
        statuses = [
            snow_instance.call("GET", "/api/now/table/sys_db_object?sysparm_limit=1")[0]
            for _attempt in range(6)
        ]
    finally:
        snow_instance.clear_faults()
    assert statuses == [200, 200, 429, 200, 200, 429]
    assert (
        snow_instance.call("GET", "/api/now/table/sys_db_object?sysparm_limit=1")[0]
        == 200
    )


def test_request_log_records_requests_without_secrets(
    snow_instance: SnowInstance,
) -> None:
    snow_instance.clear_requests()
    snow_instance.call(
        "GET", "/api/now/table/sys_user?sysparm_limit=1&sysparm_fields=user_name"
    )
    snow_instance.call(
        "PATCH",
        "/api/now/table/sys_user/00000000000000000000000000000000",
        {"active": False},
    )
    snow_instance.call(
        "GET", "/api/now/table/sys_user", user="admin", password="wrong-password"
    )
    form = urllib.parse.urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": snow_instance.oauth_client_id,
            "client_secret": snow_instance.oauth_client_secret,
        }
    )
    snow_instance.call(
        "POST",
        "/oauth_token.do",
        raw=form.encode(),
        auth=False,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    log = snow_instance.requests()
    assert [(r["method"], r["path"], r["status"], r["user"]) for r in log] == [
        ("GET", "/api/now/table/sys_user", 200, "admin"),
        (
            "PATCH",
            "/api/now/table/sys_user/00000000000000000000000000000000",
            404,
            "admin",
        ),
        ("GET", "/api/now/table/sys_user", 401, ""),
        ("POST", "/oauth_token.do", 200, ""),
    ]
    assert urllib.parse.parse_qs(log[0]["query"]) == {
        "sysparm_limit": ["1"],
        "sysparm_fields": ["user_name"],
    }
    assert all(r["port"] == "main" and r["ts"] > 0 for r in log)

    # Read the log table directly: no password, client secret or Authorization value in it.
    with sqlite3.connect(snow_instance.state_dir / "instance.sqlite") as db:
        stored = repr(db.execute("SELECT * FROM requests").fetchall())
    basic = base64.b64encode(f"admin:{snow_instance.admin_password}".encode()).decode()
    for secret in (
        snow_instance.admin_password,
        "wrong-password",
        snow_instance.oauth_client_secret,
        basic,
    ):
        assert secret not in stored
    snow_instance.clear_requests()
    assert snow_instance.requests() == []


def test_unexpected_failure_is_a_500_envelope_without_traceback(
    snow_instance: SnowInstance,
) -> None:
    host, port = snow_instance.host.rsplit(":", 1)
    context = ssl.create_default_context(cafile=snow_instance.ca_path)
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(
            b"POST /api/now/table/sys_user HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n"
        )
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    head, _blank, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500") and b"Server: snow_adc" in head
    assert b'"status": "failure"' in body and b"Traceback" not in body


def test_keep_alive_connection_serves_several_requests(
    snow_instance: SnowInstance,
) -> None:
    connection = http.client.HTTPSConnection(
        snow_instance.host, context=snow_instance.ssl_context(), timeout=10
    )
    auth = base64.b64encode(
        f"{snow_instance.admin_user}:{snow_instance.admin_password}".encode()
    ).decode()
    headers = {"Authorization": f"Basic {auth}", "Accept": "application/json"}
    try:
        for table in ("sys_user", "sys_properties", "no_such_table", "sys_user_role"):
            connection.request(
                "GET", f"/api/now/table/{table}?sysparm_limit=1", headers=headers
            )
            answer = connection.getresponse()
            body = json.loads(answer.read())
            assert answer.status == (404 if table == "no_such_table" else 200)
            assert ("error" if table == "no_such_table" else "result") in body
    finally:
        connection.close()


def test_concurrent_writes_all_land(snow_instance: SnowInstance) -> None:
    def create(n: int) -> int:
        return post_record(snow_instance, "sys_user", {"user_name": f"par{n:02d}"})[0]

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(create, range(24)))
    assert statuses == [201] * 24
    _status, headers, _body = snow_instance.call(
        "GET",
        "/api/now/table/sys_user?sysparm_query=user_nameSTARTSWITHpar&sysparm_limit=1",
    )
    assert headers["X-Total-Count"] == "24"
