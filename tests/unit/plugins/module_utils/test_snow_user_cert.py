"""snow_user_cert logic with a mock client: decisions, request economy, refusals and rollback."""

from __future__ import annotations

import datetime
import hashlib
import typing as t
from unittest import mock

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _snow_user_cert as user_cert,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    CertificateError,
    ServiceNowError,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._snow_client import (
    ServiceNowRequestError,
    SnowClient,
)

NOW = datetime.datetime.now(datetime.UTC)
CA_KEY = ec.generate_private_key(ec.SECP256R1())
CLIENT_AUTH = (ExtendedKeyUsageOID.CLIENT_AUTH,)


def _cert(
    cn: str,
    *,
    issuer: str = "Robot CA",
    key: t.Any = CA_KEY,
    expired: bool = False,
    ca: bool = False,
    eku: t.Sequence[x509.ObjectIdentifier] | None = CLIENT_AUTH,
) -> tuple[t.Any, x509.Certificate]:
    own = key if ca else ec.generate_private_key(ec.SECP256R1())
    end = (
        NOW - datetime.timedelta(days=1)
        if expired
        else NOW + datetime.timedelta(days=30)
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(own.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=2))
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if eku is not None and not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return own, builder.sign(key, hashes.SHA256())


CA_CERT = _cert("Robot CA", ca=True)[1]


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _digest(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.PEM)).hexdigest()


def _client() -> mock.MagicMock:
    client = mock.create_autospec(SnowClient, instance=True)
    client.check_mode = False
    client.missing_tables = set()
    client.sleep = mock.Mock()
    client.list_in.return_value = []
    client.list_attachments.return_value = []
    client.list_records.return_value = []
    return client


def _params(*mappings: dict[str, t.Any], **extra: t.Any) -> dict[str, t.Any]:
    return {
        "mappings": list(mappings),
        "state": "present",
        "exclusive": "none",
        **extra,
    }


def _record(
    sys_id: str, user: str, name: str, *, active: str = "true"
) -> dict[str, t.Any]:
    return {
        "sys_id": sys_id,
        "name": name,
        "user": "u" + sys_id[1:],
        "user.user_name": user,
        "active": active,
        "issuer": "CN=Robot CA",
    }


def _registered(
    client: mock.MagicMock,
    mapping_attachments: list[dict[str, t.Any]],
    contents: dict[str, x509.Certificate] | None = None,
    *,
    ca: x509.Certificate = CA_CERT,
    publish_status: str = "exists",
) -> mock.MagicMock:
    """CLIENT answering for one active CA record holding CA, next to the given mapping attachments."""
    client.list_records.return_value = [
        {"sys_id": "c" * 32, "name": "Robot CA", "publish_status": publish_status}
    ]
    client.list_attachments.side_effect = lambda table, ids: (
        [{"sys_id": "d" * 32, "table_sys_id": "c" * 32, "hash": "x"}]
        if table == "sys_ca_certificate"
        else mapping_attachments
    )
    everything = dict(contents or {}, **{"d" * 32: ca})
    client.attachment_content.side_effect = lambda sys_id: everything[
        sys_id
    ].public_bytes(serialization.Encoding.PEM)
    return client


def _writes(client: mock.MagicMock) -> list[str]:
    return [
        name
        for name in (
            "create",
            "update",
            "delete",
            "attach",
            "delete_attachment",
            "post",
        )
        if getattr(client, name).called
    ]


def test_unchanged_fleet_reads_mappings_and_cas_once_and_writes_nothing() -> None:
    certs = {f"robot{i}": _cert(f"robot{i}")[1] for i in range(3)}
    client = _client()
    client.list_in.return_value = [
        _record(f"{i:032x}", u, f"{u} mTLS") for i, u in enumerate(certs)
    ]
    _registered(
        client,
        [
            {"sys_id": f"a{i:031x}", "table_sys_id": f"{i:032x}", "hash": _digest(c)}
            for i, c in enumerate(certs.values())
        ],
    )

    changed, result, diff = user_cert.run(
        _params(
            *(
                {"user": u, "name": f"{u} mTLS", "pem_content": _pem(c)}
                for u, c in certs.items()
            )
        ),
        client,
        False,
    )

    assert (
        changed is False
        and [m["action"] for m in result["mappings"]] == ["unchanged"] * 3
    )
    # One read of the mappings and their attachments, one of the CA records, their attachments and PEM.
    assert client.list_in.call_count == 1 and client.list_attachments.call_count == 2
    assert (
        client.list_records.call_count == 1
        and client.attachment_content.call_count == 1
    )
    assert _writes(client) == [] and diff == {"before": {}, "after": {}}
    assert (
        result["mappings"][0]["sha256_fingerprint"]
        == certs["robot0"].fingerprint(hashes.SHA256()).hex(":").upper()
    )


def test_private_key_is_refused_before_any_request() -> None:
    key, cert = _cert("robot1")
    key_text = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    client = _client()

    with pytest.raises(
        CertificateError, match="holds a private key; give the certificate only"
    ):
        user_cert.run(
            _params(
                {"user": "robot1", "name": "r", "pem_content": _pem(cert) + key_text}
            ),
            client,
            False,
        )

    assert client.mock_calls == []


def test_expired_certificate_is_refused_before_any_request() -> None:
    client = _client()

    with pytest.raises(CertificateError, match="expired on"):
        user_cert.run(
            _params(
                {
                    "user": "robot1",
                    "name": "r",
                    "pem_content": _pem(_cert("robot1", expired=True)[1]),
                }
            ),
            client,
            False,
        )

    assert client.mock_calls == []


def test_unregistered_ca_is_refused_before_any_write() -> None:
    other_key = ec.generate_private_key(ec.SECP256R1())
    _ignored, stranger = _cert("robot1", issuer="Other CA", key=other_key)
    client = _client()
    client.list_in.side_effect = [[], [{"sys_id": "f" * 32, "user_name": "robot1"}]]
    client.list_records.return_value = [
        {"sys_id": "c" * 32, "name": "Robot CA", "publish_status": "exists"}
    ]
    client.list_attachments.return_value = [
        {"sys_id": "d" * 32, "table_sys_id": "c" * 32, "hash": "x"}
    ]
    client.attachment_content.return_value = CA_CERT.public_bytes(
        serialization.Encoding.PEM
    )

    with pytest.raises(
        CertificateError,
        match="issued by 'CN=Other CA', which is not registered as an active CA",
    ):
        user_cert.run(
            _params({"user": "robot1", "name": "r", "pem_content": _pem(stranger)}),
            client,
            False,
        )

    assert _writes(client) == []


def test_unpublished_ca_is_named_with_its_status() -> None:
    client = _client()
    client.list_in.side_effect = [[], [{"sys_id": "f" * 32, "user_name": "robot1"}]]
    client.list_records.return_value = [
        {"sys_id": "c" * 32, "name": "Robot CA", "publish_status": "pending"}
    ]
    client.list_attachments.return_value = [
        {"sys_id": "d" * 32, "table_sys_id": "c" * 32, "hash": "x"}
    ]
    client.attachment_content.return_value = CA_CERT.public_bytes(
        serialization.Encoding.PEM
    )

    with pytest.raises(ServiceNowError, match="publish status 'pending'"):
        user_cert.run(
            _params(
                {"user": "robot1", "name": "r", "pem_content": _pem(_cert("robot1")[1])}
            ),
            client,
            False,
        )

    assert _writes(client) == []


def test_unknown_user_is_refused_before_any_write() -> None:
    client = _client()

    with pytest.raises(ServiceNowError, match="no sys_user ghost on the instance"):
        user_cert.run(
            _params(
                {"user": "ghost", "name": "r", "pem_content": _pem(_cert("ghost")[1])}
            ),
            client,
            False,
        )

    assert _writes(client) == []


def _new_mapping_client() -> mock.MagicMock:
    client = _client()
    client.list_in.side_effect = [[], [{"sys_id": "f" * 32, "user_name": "robot1"}]]
    client.list_records.return_value = [
        {"sys_id": "c" * 32, "name": "Robot CA", "publish_status": "exists"}
    ]
    client.list_attachments.side_effect = lambda table, ids: (
        [{"sys_id": "d" * 32, "table_sys_id": "c" * 32, "hash": "x"}]
        if table == "sys_ca_certificate"
        else []
    )
    client.attachment_content.return_value = CA_CERT.public_bytes(
        serialization.Encoding.PEM
    )
    return client


def test_new_mapping_attaches_first_then_inserts_with_the_same_sys_id() -> None:
    client = _new_mapping_client()
    client.attach.return_value = {"sys_id": "e" * 32}
    client.create.side_effect = lambda table, fields: dict(fields)
    cert = _cert("robot1")[1]

    changed, result, diff = user_cert.run(
        _params({"user": "robot1", "name": "robot1 mTLS", "pem_content": _pem(cert)}),
        client,
        False,
    )

    assert changed is True and result["mappings"][0]["action"] == "created"
    table, sys_id, file_name, content, content_type = client.attach.call_args.args
    assert table == "sys_user_certificate" and content == cert.public_bytes(
        serialization.Encoding.PEM
    )
    fields = client.create.call_args.args[1]
    assert (
        fields["sys_id"] == sys_id
        and fields["user"] == "f" * 32
        and fields["type"] == "client_cert"
    )
    assert client.mock_calls.index(
        mock.call.attach(*client.attach.call_args.args)
    ) < client.mock_calls.index(mock.call.create(*client.create.call_args.args))
    assert (
        diff["after"]["robot1/robot1 mTLS"]["sha256_fingerprint"]
        == result["mappings"][0]["sha256_fingerprint"]
    )


def test_failed_insert_deletes_what_this_run_created() -> None:
    client = _new_mapping_client()
    client.attach.return_value = {"sys_id": "e" * 32}
    client.create.side_effect = ServiceNowRequestError(
        "POST /api/now/table/sys_user_certificate failed with HTTP 400: bad",
        method="POST",
        path="/x",
        status=400,
    )
    client.delete.side_effect = ServiceNowRequestError(
        "gone", method="DELETE", path="/x", status=404
    )
    orphan = {"sys_id": "9" * 32}
    client.list_attachments.side_effect = lambda table, ids: (
        [{"sys_id": "d" * 32, "table_sys_id": "c" * 32, "hash": "x"}]
        if table == "sys_ca_certificate"
        else [orphan]
    )

    with pytest.raises(
        ServiceNowError,
        match="HTTP 400: bad; the records and attachments this run had written were removed again, "
        "so nothing is left half-written$",
    ):
        user_cert.run(
            _params(
                {
                    "user": "robot1",
                    "name": "robot1 mTLS",
                    "pem_content": _pem(_cert("robot1")[1]),
                }
            ),
            client,
            False,
        )

    sys_id = client.attach.call_args.args[1]
    client.delete.assert_called_once_with("sys_user_certificate", sys_id)
    client.delete_attachment.assert_called_once_with("9" * 32)


def test_new_pem_under_the_same_name_replaces_after_the_new_record_exists() -> None:
    old_cert, new_cert = _cert("robot1")[1], _cert("robot1")[1]
    client = _new_mapping_client()
    client.list_in.side_effect = [[_record("1" * 32, "robot1", "robot1 mTLS")]]
    client.list_attachments.side_effect = lambda table, ids: (
        [{"sys_id": "d" * 32, "table_sys_id": "c" * 32, "hash": "x"}]
        if table == "sys_ca_certificate"
        else [{"sys_id": "a" * 32, "table_sys_id": "1" * 32, "hash": _digest(old_cert)}]
    )
    client.attachment_content.side_effect = lambda sys_id: (
        CA_CERT if sys_id == "d" * 32 else old_cert
    ).public_bytes(serialization.Encoding.PEM)
    client.create.side_effect = lambda table, fields: dict(fields)

    changed, result, diff = user_cert.run(
        _params(
            {"user": "robot1", "name": "robot1 mTLS", "pem_content": _pem(new_cert)}
        ),
        client,
        False,
    )

    assert changed and result["mappings"][0]["action"] == "replaced"
    assert [r["sys_id"] for r in result["removed"]] == ["1" * 32]
    names = [c[0] for c in client.mock_calls if c[0] in ("create", "delete")]
    assert names.index("create") < names.index("delete")

    def fingerprint(cert: x509.Certificate) -> str:
        return cert.fingerprint(hashes.SHA256()).hex(":").upper()

    assert diff["before"]["robot1/robot1 mTLS"]["sha256_fingerprint"] == fingerprint(
        old_cert
    )
    assert diff["after"]["robot1/robot1 mTLS"]["sha256_fingerprint"] == fingerprint(
        new_cert
    )


def test_exclusive_deactivates_other_mappings_from_the_same_ca_only() -> None:
    current, old = _cert("robot1")[1], _cert("robot1")[1]
    foreign = _cert(
        "robot1", issuer="Other CA", key=ec.generate_private_key(ec.SECP256R1())
    )[1]
    client = _client()
    client.list_in.return_value = [
        _record("1" * 32, "robot1", "robot1 2027"),
        _record("2" * 32, "robot1", "robot1 2026"),
        _record("3" * 32, "robot1", "robot1 other"),
    ]
    _registered(
        client,
        [
            {"sys_id": "a" * 32, "table_sys_id": "1" * 32, "hash": _digest(current)},
            {"sys_id": "b" * 32, "table_sys_id": "2" * 32, "hash": _digest(old)},
            {"sys_id": "e" * 32, "table_sys_id": "3" * 32, "hash": _digest(foreign)},
        ],
        {"b" * 32: old, "e" * 32: foreign},
    )

    changed, result, _ignored = user_cert.run(
        _params(
            {"user": "robot1", "name": "robot1 2027", "pem_content": _pem(current)},
            exclusive="deactivate",
        ),
        client,
        False,
    )

    assert changed and [d["sys_id"] for d in result["deactivated"]] == ["2" * 32]
    client.update.assert_called_once_with(
        "sys_user_certificate", "2" * 32, {"active": "false"}
    )
    client.create.assert_not_called()


def test_duplicate_user_and_name_is_refused() -> None:
    cert = _pem(_cert("robot1")[1])
    with pytest.raises(ServiceNowError, match="twice"):
        user_cert.run(
            _params(
                {"user": "r", "name": "n", "pem_content": cert},
                {"user": "r", "name": "n", "pem_content": cert},
            ),
            _client(),
            False,
        )


def test_absent_removes_by_name() -> None:
    client = _client()
    client.list_in.return_value = [
        _record("1" * 32, "robot1", "robot1 mTLS"),
        _record("2" * 32, "robot1", "keep"),
    ]

    changed, result, diff = user_cert.run(
        {"mappings": [{"user": "robot1", "name": "robot1 mTLS"}], "state": "absent"},
        client,
        False,
    )

    assert changed and [r["sys_id"] for r in result["removed"]] == ["1" * 32]
    client.delete.assert_called_once_with("sys_user_certificate", "1" * 32)
    assert list(diff["before"]) == ["robot1/robot1 mTLS"] and diff["after"] == {}


def test_absent_with_only_the_certificate_matches_it_under_any_name() -> None:
    cert = _cert("robot1")[1]
    client = _client()
    client.list_in.return_value = [
        _record("1" * 32, "robot1", "robot1"),
        _record("2" * 32, "robot1", "robot1 renamed"),
    ]
    client.list_attachments.return_value = [
        {"sys_id": "a" * 32, "table_sys_id": "2" * 32, "hash": _digest(cert)}
    ]

    changed, result, _ignored = user_cert.run(
        {
            "mappings": [{"user": "robot1", "pem_content": _pem(cert)}],
            "state": "absent",
        },
        client,
        False,
    )

    # The record named like the certificate's CN but holding another certificate stays.
    assert changed and [r["sys_id"] for r in result["removed"]] == ["2" * 32]
    client.delete.assert_called_once_with("sys_user_certificate", "2" * 32)


def test_chain_pem_from_cert_export_maps_the_leaf_only() -> None:
    client = _new_mapping_client()
    client.attach.return_value = {"sys_id": "e" * 32}
    client.create.side_effect = lambda table, fields: dict(fields)
    cert = _cert("robot1")[1]

    changed, result, _diff = user_cert.run(
        _params(
            {
                "user": "robot1",
                "name": "robot1 mTLS",
                "pem_content": _pem(cert) + _pem(CA_CERT),
            }
        ),
        client,
        False,
    )

    assert changed is True and result["mappings"][0]["action"] == "created"
    content = client.attach.call_args.args[3]
    assert content == cert.public_bytes(serialization.Encoding.PEM)
    assert result["mappings"][0]["subject"] == "CN=robot1"


def test_chain_pem_of_an_unchanged_mapping_matches_by_the_leaf() -> None:
    cert = _cert("robot1")[1]
    client = _client()
    client.list_in.return_value = [_record("1" * 32, "robot1", "robot1 mTLS")]
    _registered(
        client, [{"sys_id": "a" * 32, "table_sys_id": "1" * 32, "hash": _digest(cert)}]
    )

    changed, result, _diff = user_cert.run(
        _params(
            {
                "user": "robot1",
                "name": "robot1 mTLS",
                "pem_content": _pem(cert) + _pem(CA_CERT),
            }
        ),
        client,
        False,
    )

    assert changed is False and result["mappings"][0]["action"] == "unchanged"
    assert _writes(client) == []


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(lambda: _cert("robot2")[1], id="another-leaf"),
        pytest.param(
            lambda: _cert(
                "Other CA",
                ca=True,
                issuer="Other CA",
                key=ec.generate_private_key(ec.SECP256R1()),
            )[1],
            id="unrelated-ca",
        ),
    ],
)
def test_chain_pem_with_an_unrelated_certificate_is_refused_before_any_request(
    extra: t.Callable[[], x509.Certificate],
) -> None:
    client = _client()
    cert = _cert("robot1")[1]

    with pytest.raises(
        CertificateError,
        match="holds 2 certificates that are not the robot's certificate followed by its issuers",
    ):
        user_cert.run(
            _params(
                {
                    "user": "robot1",
                    "name": "r",
                    "pem_content": _pem(cert) + _pem(extra()),
                }
            ),
            client,
            False,
        )

    assert client.mock_calls == []


def test_chain_pem_with_the_ca_first_is_refused() -> None:
    client = _client()

    with pytest.raises(CertificateError, match="followed by its issuers"):
        user_cert.run(
            _params(
                {
                    "user": "robot1",
                    "name": "r",
                    "pem_content": _pem(CA_CERT) + _pem(_cert("robot1")[1]),
                }
            ),
            client,
            False,
        )

    assert client.mock_calls == []


@pytest.mark.parametrize(
    ("cert", "match"),
    [
        pytest.param(
            _cert("robot1", eku=[ExtendedKeyUsageOID.CODE_SIGNING])[1],
            r"mapping robot1/r: 'CN=robot1' lacks the client authentication EKU .* never sent in the TLS handshake; "
            "use the robot's client_auth certificate",
            id="code-signing",
        ),
        pytest.param(
            _cert("robot1", eku=None)[1],
            "lacks the client authentication EKU",
            id="no-eku",
        ),
        pytest.param(
            CA_CERT,
            r"mapping robot1/r: 'CN=Robot CA' is a CA certificate .*map the robot's client_auth certificate",
            id="ca",
        ),
    ],
)
def test_certificate_unusable_for_mutual_tls_is_refused_before_any_request(
    cert: x509.Certificate, match: str
) -> None:
    client = _client()

    with pytest.raises(CertificateError, match=match):
        user_cert.run(
            _params({"user": "robot1", "name": "r", "pem_content": _pem(cert)}),
            client,
            False,
        )

    assert client.mock_calls == []


OTHER_CA_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.mark.parametrize(
    ("ca", "publish_status", "active"),
    [
        pytest.param(
            _cert("Other CA", ca=True, issuer="Other CA", key=OTHER_CA_KEY)[1],
            "exists",
            True,
            id="record-holds-another-ca",
        ),
        pytest.param(
            # Same name as the robots' issuer, another key: only the signature tells them apart.
            _cert("Robot CA", ca=True, issuer="Robot CA", key=OTHER_CA_KEY)[1],
            "exists",
            True,
            id="same-subject-other-key",
        ),
        pytest.param(CA_CERT, "pending", True, id="not-published"),
        pytest.param(CA_CERT, "exists", False, id="deactivated"),
    ],
)
def test_unchanged_mapping_whose_ca_record_is_gone_fails_naming_it(
    ca: x509.Certificate, publish_status: str, active: bool
) -> None:
    robots = {f"robot{i}": _cert(f"robot{i}")[1] for i in range(2)}
    client = _client()
    client.list_in.return_value = [
        _record(f"{i:032x}", u, f"{u} mTLS") for i, u in enumerate(robots)
    ]
    _registered(
        client,
        [
            {"sys_id": f"a{i:031x}", "table_sys_id": f"{i:032x}", "hash": _digest(c)}
            for i, c in enumerate(robots.values())
        ],
        ca=ca,
        publish_status=publish_status,
    )
    if not active:
        client.list_records.return_value = []

    with pytest.raises(CertificateError) as failure:
        user_cert.run(
            _params(
                *(
                    {"user": u, "name": f"{u} mTLS", "pem_content": _pem(c)}
                    for u, c in robots.items()
                )
            ),
            client,
            False,
        )

    message = str(failure.value)
    assert message.startswith(
        "2 mapping(s) (robot0/robot0 mTLS, robot1/robot1 mTLS) hold certificates issued by 'CN=Robot CA', "
        "which is no longer an active, published CA record"
    )
    assert "re-issue them from the registered CA" in message and "\n" not in message
    assert _writes(client) == []
    requests = (
        client.list_in.call_count
        + client.list_attachments.call_count
        + client.list_records.call_count
        + client.attachment_content.call_count
    )
    assert requests <= 5


def _unchanged_fleet(
    client: mock.MagicMock, robots: dict[str, x509.Certificate]
) -> dict[str, t.Any]:
    """CLIENT holding one mapping per robot; answers the params of an unchanged run."""
    client.list_in.return_value = [
        _record(f"{i:032x}", u, f"{u} mTLS") for i, u in enumerate(robots)
    ]
    _registered(
        client,
        [
            {"sys_id": f"a{i:031x}", "table_sys_id": f"{i:032x}", "hash": _digest(c)}
            for i, c in enumerate(robots.values())
        ],
    )
    return _params(
        *(
            {"user": u, "name": f"{u} mTLS", "pem_content": _pem(c)}
            for u, c in robots.items()
        )
    )


def test_registered_ca_content_skips_the_ca_records_and_their_download() -> None:
    robots = {f"robot{i}": _cert(f"robot{i}")[1] for i in range(3)}
    client = _client()
    params = _unchanged_fleet(client, robots)

    changed, result, _diff = user_cert.run(
        dict(params, registered_ca_content=_pem(CA_CERT)), client, False
    )

    assert changed is False and result["other_mappings"] == []
    assert [m["action"] for m in result["mappings"]] == ["unchanged"] * 3
    client.list_records.assert_not_called()
    client.attachment_content.assert_not_called()
    # Only the mappings and their attachments were read.
    assert client.list_in.call_count == 1 and client.list_attachments.call_count == 1


def test_a_certificate_from_another_ca_is_still_checked_against_the_instance() -> None:
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_ca = _cert("Other CA", ca=True, key=other_key, issuer="Other CA")[1]
    robots = {"robot0": _cert("robot0", issuer="Other CA", key=other_key)[1]}
    client = _client()
    params = _unchanged_fleet(client, robots)

    # The instance holds only the Robot CA: the mapping from Other CA is refused.
    with pytest.raises(CertificateError, match="no longer an active, published CA"):
        user_cert.run(dict(params, registered_ca_content=_pem(CA_CERT)), client, False)
    assert client.list_records.call_count == 1

    # Given its own CA, the same mapping passes without the instance's CA records.
    fresh = _client()
    params = _unchanged_fleet(fresh, robots)
    changed, _result, _diff = user_cert.run(
        dict(params, registered_ca_content=_pem(other_ca)), fresh, False
    )
    assert changed is False
    fresh.list_records.assert_not_called()


def test_registered_ca_content_that_is_no_ca_is_refused_before_any_request() -> None:
    leaf = _cert("robot0")[1]
    client = _client()

    with pytest.raises(
        CertificateError,
        match=r"^registered_ca_content holds 'CN=robot0', which is not a CA certificate",
    ):
        user_cert.run(
            _params(
                {"user": "robot0", "name": "r", "pem_content": _pem(leaf)},
                registered_ca_content=_pem(leaf),
            ),
            client,
            False,
        )

    client.list_in.assert_not_called()


def test_registered_ca_is_trusted_for_a_new_mapping_too() -> None:
    cert = _cert("robot1")[1]
    client = _client()
    client.list_in.side_effect = lambda table, field, values, **kw: (
        [{"sys_id": "5" * 32, "user_name": "robot1", "active": "true"}]
        if table == "sys_user"
        else []
    )
    client.attach.return_value = {"sys_id": "a" * 32}
    client.create.side_effect = lambda table, fields: dict(fields)

    changed, result, _diff = user_cert.run(
        _params(
            {"user": "robot1", "name": "robot1 mTLS", "pem_content": _pem(cert)},
            registered_ca_content=_pem(CA_CERT),
        ),
        client,
        False,
    )

    assert changed and result["mappings"][0]["action"] == "created"
    client.list_records.assert_not_called()


@pytest.mark.parametrize(
    ("exclusive", "left"),
    [
        ("none", [("2" * 32, True), ("3" * 32, False), ("4" * 32, True)]),
        ("deactivate", [("2" * 32, False), ("3" * 32, False), ("4" * 32, True)]),
        ("remove", [("4" * 32, True)]),
    ],
)
def test_other_mappings_are_what_is_left_besides_the_current_certificate(
    exclusive: str, left: list[tuple[str, bool]]
) -> None:
    current, old, older = (_cert("robot1")[1] for _ignored in range(3))
    foreign_key = ec.generate_private_key(ec.SECP256R1())
    foreign = _cert("robot1", issuer="Other CA", key=foreign_key)[1]
    client = _client()
    client.list_in.return_value = [
        _record("1" * 32, "robot1", "robot1 2027"),
        _record("2" * 32, "robot1", "robot1 2026"),
        _record("3" * 32, "robot1", "robot1 2025", active="false"),
        _record("4" * 32, "robot1", "robot1 other"),
    ]
    _registered(
        client,
        [
            {"sys_id": "a" * 32, "table_sys_id": "1" * 32, "hash": _digest(current)},
            {"sys_id": "b" * 32, "table_sys_id": "2" * 32, "hash": _digest(old)},
            {"sys_id": "f" * 32, "table_sys_id": "3" * 32, "hash": _digest(older)},
            {"sys_id": "e" * 32, "table_sys_id": "4" * 32, "hash": _digest(foreign)},
        ],
        {"b" * 32: old, "f" * 32: older, "e" * 32: foreign},
    )

    _changed, result, _diff = user_cert.run(
        _params(
            {"user": "robot1", "name": "robot1 2027", "pem_content": _pem(current)},
            exclusive=exclusive,
        ),
        client,
        False,
    )

    assert [(o["sys_id"], o["active"]) for o in result["other_mappings"]] == left
    assert {o["user"] for o in result["other_mappings"]} <= {"robot1"}
