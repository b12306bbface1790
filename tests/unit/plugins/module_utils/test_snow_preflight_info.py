"""Pre-flight facts and problems, and the certificate listing, with a mock client."""

from __future__ import annotations

import datetime
import hashlib
import typing as t
from unittest import mock

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _snow_cert_info as cert_info,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _snow_preflight as preflight,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _snow_tables as tables,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._snow_client import (
    Response,
    ServiceNowRequestError,
    SnowClient,
)

NOW = datetime.datetime.now(datetime.UTC)


def _client(username: str | None = "admin") -> mock.MagicMock:
    client = mock.create_autospec(SnowClient, instance=True)
    client.host = "myco.service-now.com"
    client.username = username
    client.check_mode = True
    client.last_headers = {"server": "snow_adc"}
    client.missing_tables = set()
    return client


def _ready_tables(query_table: str, **kwargs: t.Any) -> list[dict[str, t.Any]]:
    return {
        "v_plugin": [
            {"id": "com.glide.auth.mutual", "name": "Mutual", "active": "active"}
        ],
        "sys_db_object": [{"name": "sys_ca_certificate"}],
        "sys_user_has_role": [
            {"role.name": "admin"},
            {"role.name": "sso_config_admin"},
        ],
    }[query_table]


PROPERTIES_READY = [
    {"name": "glide.authenticate.mutual.enabled", "value": "true"},
    {"name": "glide.cometd.websocket.enabled", "value": "true"},
    {"name": "sn_rpa_fdn.instance_authentication", "value": "mTLS"},
]


def _dictionary(
    table: str, field: str, values: t.Any, **kwargs: t.Any
) -> list[dict[str, t.Any]]:
    if table == "sys_dictionary":
        return [{"name": n, "element": c} for n in values for c in tables.COLUMNS[n]]
    if table == "sys_choice":
        return [
            {"name": n, "element": c, "value": v}
            for (n, c), vs in tables.CHOICES_USED.items()
            for v in vs
        ]
    return PROPERTIES_READY


def test_a_ready_instance_has_no_problem() -> None:
    client = _client()
    client.list_records.side_effect = _ready_tables
    client.list_in.side_effect = _dictionary
    client.get.return_value = Response(200, {"server": "snow_adc"}, b"true")

    changed, result, _ignored = preflight.run({}, client, True)

    assert changed is False and result["problems"] == []
    facts = result["facts"]
    assert (
        facts["ready"]
        and facts["adcv2"]
        and facts["supports_tls"]
        and facts["has_sso_config_admin"]
    )
    assert facts["properties"]["sn_rpa_fdn.code_signing_required"] is None


def test_inferred_names_missing_from_the_dictionary_are_problems() -> None:
    client = _client()
    client.list_records.side_effect = _ready_tables
    columns = [
        {"name": t, "element": c}
        for t in ("sys_ca_certificate", "sys_user_certificate")
        for c in tables.COLUMNS[t]
        if c != "publish_status"
    ]
    choices = [
        {"name": t, "element": c, "value": v}
        for (t, c), values in tables.CHOICES_USED.items()
        for v in values
        if v != "client_cert"
    ]
    client.list_in.side_effect = lambda table, field, values, **kw: {
        "sys_properties": PROPERTIES_READY,
        "sys_dictionary": columns,
        "sys_choice": choices,
    }[table]
    client.get.return_value = Response(200, {"server": "snow_adc"}, b"true")

    _ignored, result, _ignored = preflight.run({}, client, True)

    assert result["facts"]["schema_mismatches"] == [
        "sys_ca_certificate has no column 'publish_status'",
        "sys_user_certificate.type has no choice value 'client_cert'",
    ]
    assert len(result["problems"]) == 2 and all(
        "_snow_tables.py" in p for p in result["problems"]
    )


def test_problems_are_plain_sentences_for_each_gap() -> None:
    client = _client()
    client.last_headers = {"server": "ServiceNow"}
    client.list_records.side_effect = lambda table, **kw: {
        "v_plugin": [{"id": "com.glide.auth.mutual", "active": "inactive"}],
        "sys_db_object": [],
        "sys_user_has_role": [{"role.name": "admin"}],
    }[table]
    client.list_in.return_value = [
        {"name": "glide.cometd.websocket.enabled", "value": "false"}
    ]
    client.get.side_effect = ServiceNowRequestError(
        "GET /adcv2/supports_tls failed with HTTP 404",
        method="GET",
        path="/adcv2/supports_tls",
        status=404,
    )

    _ignored, result, _ignored = preflight.run({}, client, True)

    text = " | ".join(result["problems"])
    for phrase in (
        "is not active; activate it with snowrpa.robot_certs.snow_plugin",
        "not behind the ADCv2 load balancer",
        "cannot accept client certificates",
        "lacks role sso_config_admin",
        "glide.cometd.websocket.enabled is false",
        "sn_rpa_fdn.instance_authentication does not exist",
    ):
        assert phrase in text
    assert result["facts"]["ready"] is False


def test_a_401_stops_the_preflight() -> None:
    client = _client()
    client.list_records.side_effect = ServiceNowRequestError(
        "GET x failed with HTTP 401", method="GET", path="x", status=401
    )

    with pytest.raises(ServiceNowRequestError):
        preflight.run({}, client, True)


def test_roles_unknown_without_a_user_name() -> None:
    client = _client(username=None)
    client.list_records.side_effect = _ready_tables
    client.list_in.side_effect = _dictionary
    client.get.return_value = Response(200, {"server": "snow_adc"}, b"true")

    _ignored, result, _ignored = preflight.run({}, client, True)

    assert result["facts"]["roles"] is None and result["facts"]["has_admin"] is None
    assert any("roles are unknown" in p for p in result["problems"])


def _cert(cn: str, issuer: x509.Name, key: t.Any, own: t.Any) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(issuer)
        .public_key(own.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=10))
        .sign(key, hashes.SHA256())
    )


def test_cert_info_reports_fingerprints_and_the_issuing_ca() -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Robot CA")])
    ca = _cert("Robot CA", ca_name, ca_key, ca_key)
    leaf = _cert("robot01", ca_name, ca_key, ec.generate_private_key(ec.SECP256R1()))
    pem = {c: c.public_bytes(serialization.Encoding.PEM) for c in (ca, leaf)}
    client = _client()
    client.list_records.return_value = [
        {
            "sys_id": "c" * 32,
            "name": "Robot CA",
            "active": "true",
            "type": "ca_cert",
            "publish_status": "exists",
        }
    ]
    client.list_in.return_value = [
        {
            "sys_id": "1" * 32,
            "name": "robot01 mTLS",
            "user": "u" * 32,
            "user.user_name": "robot01",
            "active": "true",
            "type": "client_cert",
        }
    ]
    client.list_attachments.side_effect = lambda table, ids: [
        {
            "sys_id": ("a" if table == "sys_ca_certificate" else "b") * 32,
            "table_sys_id": ids[0],
            "hash": hashlib.sha256(
                pem[ca if table == "sys_ca_certificate" else leaf]
            ).hexdigest(),
        }
    ]
    client.attachment_content.side_effect = lambda sys_id: (
        pem[ca] if sys_id == "a" * 32 else pem[leaf]
    )

    _ignored, result, _ignored = cert_info.run(
        {"users": ["robot01"], "ca_names": None, "fetch_certificates": True},
        client,
        True,
    )

    assert (
        result["cas"][0]["type"] == "ca"
        and result["cas"][0]["thumbprint"]
        == ca.fingerprint(hashes.SHA1()).hex().upper()
    )
    mapping = result["mappings"][0]
    assert (
        mapping["user_name"] == "robot01"
        and mapping["ca_name"] == "Robot CA"
        and mapping["active"] is True
    )
    assert (
        mapping["sha256_fingerprint"]
        == leaf.fingerprint(hashes.SHA256()).hex(":").upper()
    )
    assert mapping["attachment_hash"] == hashlib.sha256(pem[leaf]).hexdigest()


def test_cert_info_without_downloads_leaves_fingerprints_unknown() -> None:
    client = _client()
    client.list_records.return_value = []
    client.list_in.return_value = [
        {
            "sys_id": "1" * 32,
            "name": "m",
            "user": "u" * 32,
            "user.user_name": "robot01",
            "active": "false",
            "issuer": "CN=X",
        }
    ]
    client.list_attachments.return_value = []

    _ignored, result, _ignored = cert_info.run(
        {"users": ["robot01"], "fetch_certificates": False}, client, True
    )

    assert (
        result["mappings"][0]["sha256_fingerprint"] is None
        and result["mappings"][0]["ca_name"] is None
    )
    client.attachment_content.assert_not_called()


def test_a_non_canonical_boolean_property_is_a_problem() -> None:
    client = _client()
    client.list_records.side_effect = _ready_tables
    answers = [
        {
            "name": "glide.authenticate.mutual.enabled",
            "value": "True",
            "type": "true|false",
        },
        {
            "name": "glide.cometd.websocket.enabled",
            "value": "true",
            "type": "true|false",
        },
        # A string property may hold any text: not flagged.
        {
            "name": "sn_rpa_fdn.instance_authentication",
            "value": "mTLS",
            "type": "string",
        },
    ]
    client.list_in.side_effect = lambda table, field, values, **kw: (
        answers if table == "sys_properties" else _dictionary(table, field, values)
    )
    client.get.return_value = Response(200, {"server": "snow_adc"}, b"true")

    _ignored, result, _ignored = preflight.run({}, client, True)

    assert result["problems"] == [
        "glide.authenticate.mutual.enabled is 'True', not the canonical true or false of a boolean property; "
        "set it with snow_property"
    ]
    assert result["facts"]["ready"] is False


def test_auto_mode_on_an_active_plugin_reads_only_the_plugin() -> None:
    client = _client()
    client.list_records.side_effect = _ready_tables

    changed, result, _ignored = preflight.run({"mode": "auto"}, client, True)

    assert changed is False and result["problems"] == []
    assert client.list_records.call_count == 1
    assert client.list_records.call_args.args[0] == "v_plugin"
    client.get.assert_not_called()
    client.list_in.assert_not_called()
    facts = result["facts"]
    assert facts["checked"] == "plugin" and facts["ready"] is True
    assert facts["plugin"]["active"] is True
    assert facts["adcv2"] is None and facts["has_admin"] is None


@pytest.mark.parametrize(
    "plugin", [[], [{"id": "com.glide.auth.mutual", "active": "inactive"}]]
)
def test_auto_mode_runs_the_full_checks_until_the_plugin_is_active(
    plugin: list[dict[str, t.Any]],
) -> None:
    client = _client()
    client.last_headers = {"server": "ServiceNow"}
    client.list_records.side_effect = lambda table, **kw: {
        "v_plugin": plugin,
        "sys_db_object": [],
        "sys_user_has_role": [{"role.name": "admin"}],
    }[table]
    client.list_in.return_value = PROPERTIES_READY
    client.get.return_value = Response(200, {"server": "ServiceNow"}, b"false")

    _ignored, result, _ignored = preflight.run({"mode": "auto"}, client, True)

    facts = result["facts"]
    assert facts["checked"] == "full"
    assert facts["adcv2"] is False and facts["supports_tls"] is False
    assert facts["has_sso_config_admin"] is False
    assert any("not behind the ADCv2 load balancer" in p for p in result["problems"])
    client.get.assert_called_once_with("/adcv2/supports_tls")


def test_full_mode_is_the_default_on_an_active_plugin() -> None:
    client = _client()
    client.list_records.side_effect = _ready_tables
    client.list_in.side_effect = _dictionary
    client.get.return_value = Response(200, {"server": "snow_adc"}, b"true")

    _ignored, result, _ignored = preflight.run({}, client, True)

    assert result["facts"]["checked"] == "full"
    client.get.assert_called_once_with("/adcv2/supports_tls")
    assert client.list_in.call_count == 3
