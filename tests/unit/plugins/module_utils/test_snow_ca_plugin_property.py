"""CA records, plugin activation, properties and table checks, with a mock client."""

from __future__ import annotations

import base64
import datetime
import hashlib
import time
import typing as t
from unittest import mock

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _snow_certs as certs,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _snow_plugin as plugin,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _snow_property as prop,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _snow_tables as tables,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    CertificateError,
    ServiceNowError,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._snow_client import (
    SnowClient,
)

NOW = datetime.datetime.now(datetime.UTC)


def _ca(
    cn: str = "Robot CA", *, expired: bool = False, key: t.Any = None
) -> x509.Certificate:
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=3))
        .not_valid_after(
            NOW - datetime.timedelta(days=1)
            if expired
            else NOW + datetime.timedelta(days=300)
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _client() -> mock.MagicMock:
    client = mock.create_autospec(SnowClient, instance=True)
    client.check_mode = False
    client.sleep = mock.Mock()
    client.list_records.return_value = []
    client.list_attachments.return_value = []
    client.list_in.return_value = []
    return client


def _ca_params(cert: x509.Certificate, **extra: t.Any) -> dict[str, t.Any]:
    params = {
        "name": "Robot CA",
        "pem_path": None,
        "pem_content": _pem(cert).decode(),
        "type": "ca",
        "active": True,
        "expiration_notification": None,
        "warn_in_days": None,
        "notify_users": None,
        "wait_for_publish": True,
        "publish_timeout": 5,
        "poll_interval": 0.01,
        "state": "present",
    }
    params.update(extra)
    return params


def _stored(
    cert: x509.Certificate, sys_id: str = "1" * 32, **fields: str
) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    record = {
        "sys_id": sys_id,
        "name": "Robot CA",
        "active": "true",
        "type": "ca_cert",
        "format": "pem",
        "publish_status": "exists",
        **fields,
    }
    attachment = {
        "sys_id": "a" + sys_id[1:],
        "table_sys_id": sys_id,
        "hash": hashlib.sha256(_pem(cert)).hexdigest(),
    }
    return record, attachment


def test_same_ca_certificate_is_unchanged_without_downloads() -> None:
    cert = _ca()
    record, attachment = _stored(cert)
    client = _client()
    client.list_records.return_value = [record]
    client.list_attachments.return_value = [attachment]

    changed, result, diff = certs.run_ca(_ca_params(cert), client, False)

    assert changed is False and result["action"] == "unchanged"
    assert client.attachment_content.call_count == 0
    assert not (
        client.create.called
        or client.update.called
        or client.delete.called
        or client.attach.called
    )
    assert diff["before"] == diff["after"]


def test_changed_options_are_patched_in_place() -> None:
    cert = _ca()
    record, attachment = _stored(cert, warn_in_days="30")
    client = _client()
    client.list_records.return_value = [record]
    client.list_attachments.return_value = [attachment]
    client.update.return_value = {}

    changed, result, _ignored = certs.run_ca(
        _ca_params(cert, warn_in_days=60, active=False), client, False
    )

    assert changed and result["action"] == "updated"
    client.update.assert_called_once_with(
        "sys_ca_certificate", "1" * 32, {"active": "false", "warn_in_days": "60"}
    )


def test_new_pem_replaces_the_record_after_the_new_one_is_published() -> None:
    old, new = _ca(), _ca()
    record, attachment = _stored(old)
    client = _client()
    published = {"sys_id": "2" * 32, "name": "Robot CA", "publish_status": "exists"}
    stranded = [{"sys_id": f"{i:032x}"} for i in range(3)]
    client.list_records.side_effect = [
        [record],
        stranded,
        [dict(published, publish_status="pending")],
        [published],
    ]
    client.list_attachments.side_effect = [[attachment], []]
    client.attachment_content.return_value = _pem(old)
    client.create.side_effect = lambda table, fields: dict(fields, sys_id="2" * 32)

    changed, result, diff = certs.run_ca(_ca_params(new), client, False)

    assert changed and result["action"] == "replaced" and client.sleep.call_count == 1
    # Same subject, another key: the mappings the old key signed are counted in one request.
    count = client.list_records.call_args_list[1]
    assert count.args == ("sys_user_certificate",)
    assert count.kwargs["query"] == "active=true^issuer=CN=Robot CA"
    assert result["warnings"] == [
        "CA record Robot CA now holds CN=Robot CA; 3 active user mappings were issued by the old CA CN=Robot CA "
        "and will be refused until re-issued"
    ]
    client.delete.assert_called_once_with("sys_ca_certificate", "1" * 32)
    fingerprint = new.fingerprint(hashes.SHA256()).hex(":").upper()
    assert diff["after"]["certificates"][0]["sha256_fingerprint"] == fingerprint
    assert (
        diff["before"]["certificates"][0]["sha256_fingerprint"]
        == old.fingerprint(hashes.SHA256()).hex(":").upper()
    )


def test_renewed_ca_with_the_same_subject_and_key_does_not_count_mappings() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    old, renewed = _ca(key=key), _ca(key=key)
    record, attachment = _stored(old)
    client = _client()
    client.list_records.side_effect = [[record]]
    client.list_attachments.side_effect = [[attachment], []]
    client.attachment_content.return_value = _pem(old)
    client.create.side_effect = lambda table, fields: dict(
        fields, sys_id="2" * 32, publish_status="exists"
    )

    changed, result, _diff = certs.run_ca(_ca_params(renewed), client, False)

    assert changed and result["action"] == "replaced" and result["warnings"] == []
    assert client.list_records.call_count == 1


def test_ca_record_given_another_ca_warns_with_both_subjects() -> None:
    old, other = _ca("Robot CA"), _ca("Other CA")
    record, attachment = _stored(old, subject="CN=Robot CA")
    client = _client()
    client.list_records.side_effect = [[record], [{"sys_id": "9" * 32}]]
    client.list_attachments.side_effect = [[attachment], []]
    client.attachment_content.return_value = _pem(old)
    client.create.side_effect = lambda table, fields: dict(
        fields, sys_id="2" * 32, publish_status="exists"
    )

    _changed, result, _diff = certs.run_ca(_ca_params(other), client, False)

    assert result["warnings"] == [
        "CA record Robot CA now holds CN=Other CA; 1 active user mappings were issued by the old CA CN=Robot CA "
        "and will be refused until re-issued"
    ]


def test_failed_publish_removes_the_new_record() -> None:
    client = _client()
    client.list_records.side_effect = [
        [],
        [{"sys_id": "2" * 32, "publish_status": "failed"}],
    ]
    client.create.side_effect = lambda table, fields: dict(fields)

    with pytest.raises(ServiceNowError, match="could not publish it"):
        certs.run_ca(_ca_params(_ca()), client, False)

    created = client.create.call_args.args[1]["sys_id"]
    client.delete.assert_called_once_with("sys_ca_certificate", created)


def test_publish_timeout_names_the_status() -> None:
    client = _client()
    answers = iter([[]])
    client.list_records.side_effect = lambda *a, **kw: next(
        answers, [{"sys_id": "2" * 32, "publish_status": "pending"}]
    )
    client.sleep.side_effect = time.sleep
    client.create.side_effect = lambda table, fields: dict(fields)

    with pytest.raises(
        ServiceNowError, match="still has publish status 'pending' after 0.05 s"
    ) as failure:
        certs.run_ca(_ca_params(_ca(), publish_timeout=0.05), client, False)

    assert "raise publish_timeout, or look in the instance's system log" in str(
        failure.value
    )
    assert str(failure.value).endswith(
        "the records and attachments this run had written were removed again, so nothing is left half-written"
    )

    # The record this run created is removed again.
    client.delete.assert_called_once_with(
        "sys_ca_certificate", client.create.call_args.args[1]["sys_id"]
    )


def test_expired_ca_is_refused_before_any_request() -> None:
    client = _client()

    with pytest.raises(CertificateError, match="expired"):
        certs.run_ca(_ca_params(_ca(expired=True)), client, False)

    assert client.mock_calls == []


def test_canonical_pem_is_the_same_for_differently_wrapped_input() -> None:
    cert = _ca()
    der = cert.public_bytes(serialization.Encoding.DER)
    long_lines = (
        b"-----BEGIN CERTIFICATE-----\r\n"
        + base64.b64encode(der)
        + b"\r\n-----END CERTIFICATE-----\r\n"
    )

    assert (
        certs.read_pem(None, long_lines.decode(), source="x").digest
        == hashlib.sha256(_pem(cert)).hexdigest()
    )
    assert all(
        len(line) <= 64
        for line in certs.read_pem(
            None, long_lines.decode(), source="x"
        ).content.splitlines()
    )


def test_plugin_already_active_sends_nothing() -> None:
    client = _client()
    client.list_records.return_value = [
        {"id": "com.glide.auth.mutual", "name": "Mutual", "active": "active"}
    ]

    changed, result, _ignored = plugin.run(
        {"plugin_id": "com.glide.auth.mutual", "timeout": 5, "poll_interval": 0},
        client,
        False,
    )

    assert changed is False and result["plugin"]["active"] is True
    client.post.assert_not_called()


def test_plugin_activation_polls_until_successful() -> None:
    client = _client()
    client.list_records.return_value = [{"id": "p", "name": "P", "active": "inactive"}]
    client.post.return_value = {"links": {"progress": {"id": "prog1"}}, "status": "0"}
    client.get_json.side_effect = [
        {"status": "0"},
        {"status": "1", "percent_complete": "50"},
        {"status": "2", "status_message": "done"},
    ]

    changed, result, _ignored = plugin.run(
        {"plugin_id": "p", "timeout": 5, "poll_interval": 0.01}, client, False
    )

    assert (
        changed
        and result["progress"]["id"] == "prog1"
        and client.get_json.call_count == 3
    )
    client.post.assert_called_once_with(
        "/api/sn_cicd/plugin/p/activate", placeholder={}
    )


def test_plugin_failure_reports_the_progress_text() -> None:
    client = _client()
    client.list_records.return_value = [{"id": "p", "active": "inactive"}]
    client.post.return_value = {"links": {"progress": {"id": "prog1"}}}
    client.get_json.return_value = {
        "status": "3",
        "status_message": "Activation failed",
        "error": "dependency com.x missing",
    }

    with pytest.raises(
        ServiceNowError,
        match=r"activation of plugin p failed: Activation failed; dependency com.x missing",
    ):
        plugin.run({"plugin_id": "p", "timeout": 5, "poll_interval": 0}, client, False)


def test_plugin_timeout_and_unknown_plugin() -> None:
    client = _client()
    client.list_records.return_value = [{"id": "p", "active": "inactive"}]
    client.post.return_value = {"links": {"progress": {"id": "prog1"}}}
    client.get_json.return_value = {"status": "1", "percent_complete": "40"}
    with pytest.raises(
        ServiceNowError, match=r"still running after 0.02 s \(40% complete\)"
    ):
        plugin.run(
            {"plugin_id": "p", "timeout": 0.02, "poll_interval": 0.005}, client, False
        )

    client.list_records.return_value = []
    with pytest.raises(ServiceNowError, match="not known to the instance"):
        plugin.run({"plugin_id": "p", "timeout": 1, "poll_interval": 0}, client, False)


def test_plugin_check_mode_does_not_poll() -> None:
    client = _client()
    client.check_mode = True
    client.list_records.return_value = [{"id": "p", "active": "inactive"}]
    client.post.return_value = {}

    changed, _ignored, _ignored = plugin.run(
        {"plugin_id": "p", "timeout": 1, "poll_interval": 0}, client, True
    )

    assert changed and client.get_json.call_count == 0


def _property_params(name: str, value: t.Any, **extra: t.Any) -> dict[str, t.Any]:
    return {
        "name": name,
        "value": value,
        "type": "string",
        "description": None,
        **extra,
    }


def test_property_unchanged_and_bool_normalised() -> None:
    client = _client()
    client.list_in.return_value = [
        {
            "sys_id": "1" * 32,
            "name": "glide.authenticate.mutual.enabled",
            "value": "true",
            "type": "true|false",
        }
    ]

    changed, result, _ignored = prop.run(
        _property_params("glide.authenticate.mutual.enabled", True), client, False
    )

    assert changed is False and result["property"]["value"] == "true"
    client.update.assert_not_called()


def test_turning_on_code_signing_warns_and_updates() -> None:
    client = _client()
    client.list_in.return_value = [
        {
            "sys_id": "1" * 32,
            "name": tables.PROP_CODE_SIGNING,
            "value": "false",
            "type": "true|false",
        }
    ]

    changed, result, diff = prop.run(
        _property_params(tables.PROP_CODE_SIGNING, "true"), client, False
    )

    assert changed and result["warnings"] == [prop.CODE_SIGNING_WARNING]
    client.update.assert_called_once_with("sys_properties", "1" * 32, {"value": "true"})
    assert diff == {
        "before": {"name": tables.PROP_CODE_SIGNING, "value": "false"},
        "after": {"name": tables.PROP_CODE_SIGNING, "value": "true"},
    }


def test_missing_property_is_created_and_password_values_are_masked() -> None:
    client = _client()
    client.create.return_value = {"sys_id": "2" * 32}

    changed, result, diff = prop.run(
        _property_params("x.secret", "hunter2", type="password2", create=True),
        client,
        False,
    )

    assert changed and result["property"]["value"] == "********"
    assert "hunter2" not in str(diff) and "hunter2" not in str(result)
    client.create.assert_called_once_with(
        "sys_properties", {"name": "x.secret", "value": "hunter2", "type": "password2"}
    )


def test_missing_property_without_create_fails_and_writes_nothing() -> None:
    client = _client()

    with pytest.raises(
        ServiceNowError,
        match=r"^property glide\.authenticate\.mutual\.enabeld does not exist on the instance; check the name, "
        "or set create: true to create it$",
    ):
        prop.run(
            _property_params("glide.authenticate.mutual.enabeld", True), client, False
        )

    client.create.assert_not_called()
    client.update.assert_not_called()


@pytest.mark.parametrize(
    ("stored", "given", "written"),
    [
        ("true", "True", None),
        ("true", "yes", None),
        ("false", 0, None),
        ("false", "TRUE", "true"),
        ("True", True, "true"),
        ("FALSE", "no", "false"),
    ],
)
def test_boolean_property_is_compared_and_written_canonically(
    stored: str, given: t.Any, written: str | None
) -> None:
    client = _client()
    client.list_in.return_value = [
        {
            "sys_id": "1" * 32,
            "name": tables.PROP_MUTUAL_ENABLED,
            "value": stored,
            "type": "true|false",
        }
    ]

    changed, result, _diff = prop.run(
        _property_params(tables.PROP_MUTUAL_ENABLED, given), client, False
    )

    assert changed is (written is not None)
    if written is None:
        client.update.assert_not_called()
    else:
        client.update.assert_called_once_with(
            "sys_properties", "1" * 32, {"value": written}
        )
    assert result["property"]["value"] in ("true", "false")


def test_boolean_property_refuses_a_value_that_is_not_a_boolean() -> None:
    client = _client()
    client.list_in.return_value = [
        {"sys_id": "1" * 32, "name": "b", "value": "true", "type": "true|false"}
    ]

    with pytest.raises(ServiceNowError, match="'maybe' is neither true nor false"):
        prop.run(_property_params("b", "maybe"), client, False)

    client.update.assert_not_called()


def test_string_property_keeps_its_case() -> None:
    client = _client()
    client.list_in.return_value = [
        {"sys_id": "1" * 32, "name": "s", "value": "true", "type": "string"}
    ]

    changed, _result, _diff = prop.run(_property_params("s", "True"), client, False)

    assert changed is True
    client.update.assert_called_once_with("sys_properties", "1" * 32, {"value": "True"})


@pytest.mark.parametrize(
    ("table", "field", "ok"),
    [
        ("sys_user_certificate", "user.user_name", True),
        ("sys_user_certificate", "user.nope", False),
        ("sys_user_certificate", "name.x", False),
        ("sys_ca_certificate", "publish_status", True),
        ("sys_ca_certificate", "publish", False),
        ("no_table", "name", False),
    ],
)
def test_field_names_are_checked(table: str, field: str, ok: bool) -> None:
    if ok:
        tables.check_field(table, field)
    else:
        with pytest.raises(ServiceNowError):
            tables.check_field(table, field)


def test_query_values_cannot_inject_conditions() -> None:
    assert (
        tables.condition("sys_user", "user_name", "IN", ["a", "b"]) == "user_nameINa,b"
    )
    with pytest.raises(ServiceNowError, match="contains"):
        tables.condition("sys_user", "user_name", "=", "x^ORactive=true")
    with pytest.raises(ServiceNowError, match="contains"):
        tables.condition("sys_user", "user_name", "IN", ["a,b"])


def test_chunks_keep_order_drop_duplicates_and_respect_the_size() -> None:
    values = [f"v{i:03d}" for i in range(100)] + ["v000"]
    chunks = tables.chunk_values(values, 50)

    assert [v for chunk in chunks for v in chunk] == values[:100]
    assert all(len(",".join(chunk)) <= 50 for chunk in chunks)


def _stored_properties() -> list[dict[str, t.Any]]:
    return [
        {
            "sys_id": "1" * 32,
            "name": tables.PROP_MUTUAL_ENABLED,
            "value": "true",
            "type": "true|false",
        },
        {
            "sys_id": "2" * 32,
            "name": tables.PROP_RPA_AUTH,
            "value": "Basic",
            "type": "string",
        },
        {
            "sys_id": "3" * 32,
            "name": "x.secret",
            "value": "old-secret-1",
            "type": "password2",
        },
    ]


def _list_params(items: list[dict[str, t.Any]], **extra: t.Any) -> dict[str, t.Any]:
    return {
        "name": None,
        "value": None,
        "properties": items,
        "type": "string",
        "description": None,
        "create": False,
        **extra,
    }


def test_property_list_is_read_in_one_request_and_only_differences_are_written() -> (
    None
):
    client = _client()
    client.list_in.return_value = _stored_properties()
    items = [
        {"name": tables.PROP_MUTUAL_ENABLED, "value": "yes"},
        {"name": tables.PROP_RPA_AUTH, "value": "mTLS"},
        {"name": "x.secret", "value": "new-secret-2"},
    ]

    changed, result, diff = prop.run(_list_params(items), client, False)

    assert changed is True
    client.list_in.assert_called_once()
    assert client.list_in.call_args.args[:3] == (
        "sys_properties",
        "name",
        [tables.PROP_MUTUAL_ENABLED, tables.PROP_RPA_AUTH, "x.secret"],
    )
    assert client.update.call_args_list == [
        mock.call("sys_properties", "2" * 32, {"value": "mTLS"}),
        mock.call("sys_properties", "3" * 32, {"value": "new-secret-2"}),
    ]
    assert [(p["name"], p["changed"]) for p in result["properties"]] == [
        (tables.PROP_MUTUAL_ENABLED, False),
        (tables.PROP_RPA_AUTH, True),
        ("x.secret", True),
    ]
    assert result["properties"][1]["previous_value"] == "Basic"
    assert diff == {
        "before": {tables.PROP_RPA_AUTH: "Basic", "x.secret": "********"},
        "after": {tables.PROP_RPA_AUTH: "mTLS", "x.secret": "********"},
    }
    assert "secret-" not in str(result) + str(diff)


def test_unchanged_property_list_writes_nothing() -> None:
    client = _client()
    client.list_in.return_value = _stored_properties()
    items = [
        {"name": tables.PROP_MUTUAL_ENABLED, "value": True},
        {"name": tables.PROP_RPA_AUTH, "value": "Basic"},
    ]

    changed, result, diff = prop.run(_list_params(items), client, False)

    assert changed is False and diff == {"before": {}, "after": {}}
    assert [p["sys_id"] for p in result["properties"]] == ["1" * 32, "2" * 32]
    client.update.assert_not_called()
    client.create.assert_not_called()


def test_property_list_checks_every_item_before_the_first_write() -> None:
    client = _client()
    client.list_in.return_value = _stored_properties()
    items = [
        {"name": tables.PROP_RPA_AUTH, "value": "mTLS"},
        {"name": tables.PROP_MUTUAL_ENABLED, "value": "maybe"},
    ]
    with pytest.raises(ServiceNowError, match="'maybe' is neither true nor false"):
        prop.run(_list_params(items), client, False)

    missing = [
        {"name": tables.PROP_RPA_AUTH, "value": "mTLS"},
        {"name": "x.typo", "value": "1"},
    ]
    with pytest.raises(ServiceNowError, match=r"^property x\.typo does not exist"):
        prop.run(_list_params(missing), client, False)

    client.update.assert_not_called()
    client.create.assert_not_called()


def test_property_list_item_create_and_type_override_the_module_options() -> None:
    client = _client()
    client.list_in.return_value = []
    client.create.return_value = {"sys_id": "4" * 32}
    items = [{"name": "x.flag", "value": "on", "create": True, "type": "true|false"}]

    changed, result, _diff = prop.run(_list_params(items), client, False)

    assert changed and result["properties"][0]["sys_id"] == "4" * 32
    client.create.assert_called_once_with(
        "sys_properties", {"name": "x.flag", "value": "true", "type": "true|false"}
    )


def test_property_list_refuses_a_name_given_twice() -> None:
    client = _client()
    items = [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]

    with pytest.raises(ServiceNowError, match="^properties names a twice"):
        prop.run(_list_params(items), client, False)

    client.list_in.assert_not_called()


def test_failed_write_in_a_property_list_sets_back_what_was_written() -> None:
    client = _client()
    client.list_in.return_value = _stored_properties()
    client.create.return_value = {"sys_id": "5" * 32}
    client.update.side_effect = [
        {},
        ServiceNowError("PATCH /api/now/table/sys_properties/x answered 503"),
        {},
    ]
    items = [
        {"name": tables.PROP_RPA_AUTH, "value": "mTLS"},
        {"name": "x.new", "value": "v", "create": True},
        {"name": "x.secret", "value": "new-secret-2"},
    ]

    with pytest.raises(ServiceNowError) as caught:
        prop.run(_list_params(items), client, False)

    message = str(caught.value)
    assert message.startswith("PATCH /api/now/table/sys_properties/x answered 503; ")
    assert message.endswith("so nothing is left half-written") and "\n" not in message
    # Newest first: the created property goes, the updated one gets its old value back.
    client.delete.assert_called_once_with("sys_properties", "5" * 32)
    assert client.update.call_args_list[-1] == mock.call(
        "sys_properties", "2" * 32, {"value": "Basic"}
    )
    assert "secret" not in message
