"""Profiles, parsing, validation and inspection helpers of _pki, checked with openssl and pkilint."""

from __future__ import annotations

import datetime
import random
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import _pki
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    CertificateError,
)
from tests.unit.plugins.module_utils.pki_fixtures import (
    Identity,
    make_identity,
    pkilint,
    run,
    write_pem,
)


@pytest.fixture(scope="module")
def ca() -> Identity:
    return make_identity("ca", "Robot Root CA")


@pytest.fixture(scope="module")
def intermediate(ca: Identity) -> Identity:
    return make_identity("ca", "Robot Issuing CA", issuer=ca)


@pytest.fixture(scope="module")
def client(intermediate: Identity) -> Identity:
    return make_identity(
        "client_auth",
        "robot01",
        issuer=intermediate,
        san=["upn:robot01@example.com", "email:robot01@example.com"],
        subject={
            "email_address": "robot01@example.com",
            "organizational_unit_name": "RPA",
        },
    )


def test_thumbprint_and_fingerprint_match_openssl(
    tmp_path: Path, client: Identity
) -> None:
    pem = write_pem(tmp_path / "c.pem", client.cert)

    sha1 = run(
        "openssl", "x509", "-in", str(pem), "-noout", "-fingerprint", "-sha1"
    ).stdout
    sha256 = run(
        "openssl", "x509", "-in", str(pem), "-noout", "-fingerprint", "-sha256"
    ).stdout

    assert _pki.thumbprint(client.cert) == sha1.split("=", 1)[1].strip().replace(
        ":", ""
    )
    assert len(_pki.thumbprint(client.cert)) == 40
    assert _pki.sha256_fingerprint(client.cert) == sha256.split("=", 1)[1].strip()


def test_cert_summary_matches_openssl(tmp_path: Path, client: Identity) -> None:
    pem = write_pem(tmp_path / "c.pem", client.cert)
    out = run(
        "openssl",
        "x509",
        "-in",
        str(pem),
        "-noout",
        "-serial",
        "-enddate",
        "-startdate",
    ).stdout
    fields = dict(line.split("=", 1) for line in out.splitlines())

    summary = _pki.cert_summary(client.cert)

    assert summary["serial_number"] == int(fields["serial"], 16)
    assert summary["not_after"] == datetime.datetime.strptime(
        fields["notAfter"], "%b %d %H:%M:%S %Y GMT"
    ).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert summary["not_before"] == datetime.datetime.strptime(
        fields["notBefore"], "%b %d %H:%M:%S %Y GMT"
    ).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (
        summary["subject"].startswith(
            "1.2.840.113549.1.9.1=robot01@example.com,CN=robot01,OU=RPA"
        )
        or "CN=robot01" in summary["subject"]
    )
    assert summary["issuer"] == "CN=Robot Issuing CA,O=Example Robots,C=DE"
    assert set(summary) == {
        "subject",
        "issuer",
        "serial_number",
        "not_before",
        "not_after",
        "thumbprint",
        "sha256_fingerprint",
    }


def test_serial_is_positive_and_at_most_159_bits(
    client: Identity, ca: Identity
) -> None:
    for cert in (client.cert, ca.cert):
        assert 0 < cert.serial_number < 2**159


def test_openssl_accepts_client_for_sslclient(
    tmp_path: Path, ca: Identity, intermediate: Identity, client: Identity
) -> None:
    root = write_pem(tmp_path / "root.pem", ca.cert)
    untrusted = write_pem(tmp_path / "int.pem", intermediate.cert)
    leaf = write_pem(tmp_path / "leaf.pem", client.cert)

    result = run(
        "openssl",
        "verify",
        "-purpose",
        "sslclient",
        "-CAfile",
        str(root),
        "-untrusted",
        str(untrusted),
        str(leaf),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith(": OK")


def test_openssl_rejects_code_signing_cert_for_sslclient(
    tmp_path: Path, ca: Identity
) -> None:
    signer = make_identity("code_signing", "Design Studio", issuer=ca)
    root = write_pem(tmp_path / "root.pem", ca.cert)
    leaf = write_pem(tmp_path / "leaf.pem", signer.cert)

    result = run(
        "openssl", "verify", "-purpose", "sslclient", "-CAfile", str(root), str(leaf)
    )

    assert result.returncode != 0
    assert "unsuitable certificate purpose" in (result.stdout + result.stderr)


def test_client_extensions_as_openssl_prints_them(
    tmp_path: Path, client: Identity
) -> None:
    text = run(
        "openssl",
        "x509",
        "-in",
        str(write_pem(tmp_path / "c.pem", client.cert)),
        "-noout",
        "-text",
    ).stdout

    assert (
        "X509v3 Key Usage: critical\n                Digital Signature, Key Encipherment"
        in text
    )
    assert "TLS Web Client Authentication" in text
    assert "othername: UPN::robot01@example.com" in text
    assert text.count("email:robot01@example.com") == 1
    assert "DNS:" not in text
    assert "CA:FALSE" in text
    assert "sha256WithRSAEncryption" in text


def test_ca_extensions_as_openssl_prints_them(tmp_path: Path, ca: Identity) -> None:
    text = run(
        "openssl",
        "x509",
        "-in",
        str(write_pem(tmp_path / "ca.pem", ca.cert)),
        "-noout",
        "-text",
    ).stdout

    assert "X509v3 Basic Constraints: critical\n                CA:TRUE" in text
    assert (
        "X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign" in text
    )
    assert "X509v3 Subject Key Identifier" in text


@pytest.mark.parametrize(
    ("purpose", "key_type", "curve"),
    [
        ("client_auth", "rsa", "secp256r1"),
        ("client_auth", "ecdsa", "secp256r1"),
        ("code_signing", "rsa", "secp256r1"),
        ("code_signing", "ecdsa", "secp384r1"),
        ("ca", "ecdsa", "secp521r1"),
    ],
)
def test_pkilint_finds_nothing(
    tmp_path: Path, ca: Identity, purpose: str, key_type: str, curve: str
) -> None:
    made = make_identity(
        purpose,
        f"robot {purpose}",
        issuer=ca,
        key_type=key_type,
        curve=curve,
        san=["upn:robot@example.com"],
    )
    issuer_pem = write_pem(tmp_path / "ca.pem", ca.cert)
    leaf_pem = write_pem(tmp_path / "leaf.pem", made.cert)

    single = pkilint("lint_pkix_cert", leaf_pem)
    chain = pkilint("lint_pkix_signer_signee_cert_chain", issuer_pem, leaf_pem)

    assert single.returncode == 0 and single.stdout.strip() == "", (
        single.stdout + single.stderr
    )
    assert chain.returncode == 0 and chain.stdout.strip() == "", (
        chain.stdout + chain.stderr
    )


def test_pkilint_finds_nothing_in_root_and_self_signed_leaf(
    tmp_path: Path, ca: Identity
) -> None:
    alone = make_identity(
        "client_auth", "robot self-signed", subject={"email_address": "r@example.com"}
    )

    for name, cert in (("ca.pem", ca.cert), ("self.pem", alone.cert)):
        result = pkilint("lint_pkix_cert", write_pem(tmp_path / name, cert))
        assert result.returncode == 0 and result.stdout.strip() == "", (
            name + result.stdout
        )


def test_order_chain_sorts_from_issuer_to_root(
    ca: Identity, intermediate: Identity, client: Identity
) -> None:
    stranger = make_identity("ca", "Unrelated CA")
    others = [ca.cert, stranger.cert, intermediate.cert]
    random.Random(4).shuffle(others)

    ordered = _pki.order_chain(client.cert, others)

    assert ordered[:2] == [intermediate.cert, ca.cert]
    assert ordered[2:] == [stranger.cert]


def test_cert_allows_purpose(ca: Identity, client: Identity) -> None:
    signer = make_identity("code_signing", "Design Studio", issuer=ca)

    assert _pki.cert_allows_purpose(client.cert, "client_auth")
    assert not _pki.cert_allows_purpose(client.cert, "code_signing")
    assert _pki.cert_allows_purpose(signer.cert, "code_signing")
    assert not _pki.cert_allows_purpose(signer.cert, "client_auth")
    assert _pki.cert_allows_purpose(ca.cert, "ca")
    assert not _pki.cert_allows_purpose(client.cert, "ca")
    assert _pki.PURPOSE_EKU["client_auth"].dotted_string == "1.3.6.1.5.5.7.3.2"
    assert _pki.PURPOSE_EKU["code_signing"].dotted_string == "1.3.6.1.5.5.7.3.3"


def test_eku_names_and_dotted_oids() -> None:
    oids = _pki.parse_eku(
        ["server_auth", "clientAuth", "1.3.6.1.4.1.311.20.2.2", "client_auth"]
    )

    assert [o.dotted_string for o in oids] == [
        "1.3.6.1.5.5.7.3.1",
        "1.3.6.1.5.5.7.3.2",
        "1.3.6.1.4.1.311.20.2.2",
    ]


def test_extra_eku_appears_after_purpose_eku(tmp_path: Path, ca: Identity) -> None:
    key = _pki.generate_private_key("ecdsa", 2048, "secp256r1")
    cert = _pki.build_certificate(
        purpose="client_auth",
        subject=_pki.build_subject({"common_name": "robot02"}),
        san=[],
        extra_ekus=_pki.parse_eku(["1.3.6.1.4.1.311.20.2.2"]),
        public_key=key.public_key(),
        valid_days=30,
        issuer_cert=ca.cert,
        issuer_key=ca.key,
    )

    text = run(
        "openssl",
        "x509",
        "-in",
        str(write_pem(tmp_path / "c.pem", cert)),
        "-noout",
        "-ext",
        "extendedKeyUsage",
    ).stdout

    assert "TLS Web Client Authentication, Microsoft Smartcard Login" in text


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: _pki.parse_eku(["client-auth-please"]),
            "unknown extended key usage 'client-auth-please'",
        ),
        (
            lambda: _pki.build_subject({"country_name": "Germany"}),
            "must be a two-letter ISO 3166 code",
        ),
        (
            lambda: _pki.build_subject({"country_name": "D1"}),
            "must be a two-letter ISO 3166 code",
        ),
        (
            lambda: _pki.build_subject({"nickname": "x"}),
            "unknown subject field(s) nickname",
        ),
        (
            lambda: _pki.build_subject({"common_name": "x" * 65}),
            "subject.common_name is 65 characters long",
        ),
        (
            lambda: _pki.generate_private_key("rsa", 1024, "secp256r1"),
            "key_size 1024 is not supported for RSA; use 2048, 3072 or 4096",
        ),
        (
            lambda: _pki.generate_private_key("ecdsa", 2048, "brainpool"),
            "curve 'brainpool' is not supported",
        ),
        (lambda: _pki.parse_san(["robot01@example.com"]), "needs a prefix"),
        (lambda: _pki.parse_san(["ip:10.0.0.1"]), "unknown prefix 'ip'"),
    ],
)
def test_bad_options_give_one_line(call, message: str) -> None:
    with pytest.raises(CertificateError) as info:
        call()

    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_country_is_upper_cased() -> None:
    assert _pki.build_subject({"country_name": "de"}).rfc4514_string() == "C=DE"


def test_check_issuer_rejects_non_ca(client: Identity) -> None:
    with pytest.raises(CertificateError, match="is not a CA"):
        _pki.check_issuer(client.cert, client.key, source="leaf.pem")


def test_check_issuer_rejects_mismatched_key(
    ca: Identity, intermediate: Identity
) -> None:
    with pytest.raises(CertificateError, match="does not match issuer certificate"):
        _pki.check_issuer(ca.cert, intermediate.key, source="ca.pem")


def test_check_issuer_rejects_expired_ca() -> None:
    old = make_identity(
        "ca",
        "Old CA",
        valid_days=10,
        now=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=20),
    )

    with pytest.raises(CertificateError, match=r"expired on \d{4}-\d\d-\d\dT"):
        _pki.check_issuer(old.cert, old.key, source="old.pem")


def test_leaf_does_not_outlive_issuer(ca: Identity) -> None:
    short = make_identity("ca", "Short CA", issuer=ca, valid_days=10)
    leaf = make_identity("client_auth", "robot03", issuer=short, valid_days=365)

    assert leaf.cert.not_valid_after_utc == short.cert.not_valid_after_utc


def test_verify_chain_reports_wrong_link(
    ca: Identity, intermediate: Identity, client: Identity
) -> None:
    _pki.verify_chain(client.cert, [intermediate.cert, ca.cert])

    with pytest.raises(CertificateError, match="did not issue"):
        _pki.verify_chain(client.cert, [ca.cert])


def test_certificate_differences_empty_for_same_options(ca: Identity) -> None:
    subject = _pki.build_subject({"common_name": "robot04"})
    key = _pki.generate_private_key("ecdsa", 2048, "secp256r1")
    options = {
        "purpose": "client_auth",
        "subject": subject,
        "san": [],
        "extra_ekus": [],
        "valid_days": 90,
        "issuer_cert": ca.cert,
    }
    cert = _pki.build_certificate(
        public_key=key.public_key(), issuer_key=ca.key, **options
    )

    assert _pki.certificate_differences(cert, **options) == []
    assert _pki.certificate_differences(cert, **{**options, "valid_days": 91}) == [
        "valid_days differs"
    ]
    assert _pki.certificate_differences(
        cert, **{**options, "purpose": "code_signing"}
    ) == ["extended key usages differ"]
    assert "purpose differs" in _pki.certificate_differences(
        cert, **{**options, "purpose": "ca"}
    )
    assert _pki.certificate_differences(
        cert, **{**options, "san": _pki.parse_san(["dns:r.example.com"])}
    ) == ["subject_alt_names differ"]


def test_load_private_key_errors(client: Identity) -> None:
    encrypted = _pki.serialize_private_key(client.key, "s3cret")
    plain = _pki.serialize_private_key(client.key, None)

    with pytest.raises(CertificateError, match="wrong passphrase"):
        _pki.load_private_key(encrypted, "nope", source="key.pem")
    with pytest.raises(CertificateError, match="is encrypted; give its passphrase"):
        _pki.load_private_key(encrypted, None, source="key.pem")
    with pytest.raises(CertificateError, match="not encrypted"):
        _pki.load_private_key(plain, "s3cret", source="key.pem")
    with pytest.raises(CertificateError, match="key.pem is not a valid private key"):
        _pki.load_private_key(plain[:40] + plain[-40:], None, source="key.pem")
    loaded = _pki.load_private_key(encrypted, "s3cret", source="key.pem")
    assert _pki.private_key_der(loaded) == _pki.private_key_der(client.key)


def test_openssl_reads_encrypted_key(tmp_path: Path, client: Identity) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(_pki.serialize_private_key(client.key, "s3cret"))

    result = run(
        "openssl", "pkey", "-in", str(path), "-passin", "pass:s3cret", "-pubout"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.encode() == client.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_load_certificates_errors(client: Identity) -> None:
    pem = _pki.cert_pem(client.cert)

    with pytest.raises(
        CertificateError, match="cert.pem is not a valid PEM/DER certificate"
    ):
        _pki.load_certificates(
            pem[:200] + b"\n-----END CERTIFICATE-----\n", source="cert.pem"
        )
    with pytest.raises(CertificateError, match="has no CERTIFICATE block"):
        _pki.load_certificates(
            b"-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n",
            source="cert.pem",
        )
    with pytest.raises(
        CertificateError, match=r"is not a valid PEM/DER certificate \(truncated"
    ):
        _pki.load_certificates(b"hello", source="cert.pem")
    assert _pki.load_certificates(pem + pem, source="bundle.pem") == [
        client.cert,
        client.cert,
    ]


def test_find_leaf_by_key_and_without_key(
    ca: Identity, intermediate: Identity, client: Identity
) -> None:
    bundle = [ca.cert, client.cert, intermediate.cert]

    assert _pki.find_leaf(bundle, client.key, source="b.pem") == client.cert
    assert _pki.find_leaf(bundle, None, source="b.pem") == client.cert
    with pytest.raises(CertificateError, match="does not match any certificate"):
        _pki.find_leaf([ca.cert], client.key, source="b.pem")


def test_upn_other_name_is_utf8_string(client: Identity) -> None:
    san = client.cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value
    other = san.get_values_for_type(x509.OtherName)[0]

    assert other.type_id.dotted_string == "1.3.6.1.4.1.311.20.2.3"
    assert other.value == b"\x0c\x13robot01@example.com"


def test_pkilint_check_is_not_vacuous(tmp_path: Path, ca: Identity) -> None:
    """Negative control: the same lint run flags a certificate that breaks RFC 5280."""
    key = _pki.generate_private_key("ecdsa", 2048, "secp256r1")
    now = datetime.datetime.now(datetime.UTC)
    bad = (
        x509.CertificateBuilder()
        .subject_name(
            _pki.build_subject(
                {"common_name": "robot01", "email_address": "r@example.com"}
            )
        )
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(ca.key, hashes.SHA256())
    )

    result = pkilint("lint_pkix_cert", write_pem(tmp_path / "bad.pem", bad))

    assert result.returncode != 0
    assert "pkix.subject_email_address_not_in_san (ERROR)" in result.stdout


def test_missing_or_old_cryptography_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import cryptography

    _pki.require_cryptography()
    monkeypatch.setattr(cryptography, "__version__", "41.0.7")
    with pytest.raises(
        CertificateError,
        match=r"^cryptography 41.0.7 is too old; 42.0.0 or later is required$",
    ):
        _pki.require_cryptography()
    monkeypatch.setattr(_pki, "HAS_CRYPTOGRAPHY", False)
    monkeypatch.setattr(
        _pki, "CRYPTOGRAPHY_IMPORT_ERROR", ImportError("No module named 'cryptography'")
    )
    with pytest.raises(
        CertificateError, match=r"cryptography >= 42.0.0 is required on the controller"
    ):
        _pki.require_cryptography()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: _pki.build_subject({"email_address": "not an email"}),
            "subject.email_address 'not an email' is not valid; expected an e-mail address local@domain",
        ),
        (
            lambda: _pki.parse_san(["email:foo"]),
            "entry 'email:foo' is not valid; expected an e-mail address local@domain",
        ),
        (
            lambda: _pki.parse_san(["email:a@b@example.com"]),
            "entry 'email:a@b@example.com' is not valid",
        ),
        (
            lambda: _pki.parse_san(["uri:not a uri"]),
            "entry 'uri:not a uri' is not valid; expected a URI with a scheme",
        ),
        (
            lambda: _pki.parse_san(
                ["uri:urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"]
            ),
            "expected a URI with a scheme and a fully qualified host",
        ),
        (
            lambda: _pki.parse_san(["uri:https://robot01/x"]),
            "expected a URI with a scheme and a fully qualified host",
        ),
        (
            lambda: _pki.parse_san(["uri:/robots/01"]),
            "entry 'uri:/robots/01' is not valid; expected a URI with a scheme",
        ),
        (
            lambda: _pki.parse_san(["dns:bad host_name!"]),
            "entry 'dns:bad host_name!' is not valid; expected a fully qualified host name",
        ),
        (
            lambda: _pki.parse_san(["dns:-robot.example.com"]),
            "entry 'dns:-robot.example.com' is not valid",
        ),
        (
            lambda: _pki.parse_san(["dns:robot..example.com"]),
            "entry 'dns:robot..example.com' is not valid",
        ),
        (
            lambda: _pki.parse_san(["upn:robot01"]),
            "entry 'upn:robot01' is not valid; expected a user principal name local@domain",
        ),
        (
            lambda: _pki.parse_san(["upn:@example.com"]),
            "entry 'upn:@example.com' is not valid",
        ),
        (
            lambda: _pki.parse_san(["dns:localhost"]),
            "entry 'dns:localhost' is not valid; expected a fully qualified host name",
        ),
        (
            lambda: _pki.parse_san(["dns:a.b-c.d"]),
            "entry 'dns:a.b-c.d' is not valid; expected a fully qualified host name",
        ),
        (
            lambda: _pki.parse_san(["email:robot@localhost"]),
            "entry 'email:robot@localhost' is not valid; expected an e-mail address",
        ),
        (lambda: _pki.parse_san(["upn:"]), "entry 'upn:' has an empty value"),
        (lambda: _pki.parse_san(["dns:  "]), "entry 'dns:  ' has an empty value"),
        (
            lambda: _pki.generate_private_key("rsa", 2049, "secp256r1"),
            "key_size 2049 is not supported for RSA; use 2048, 3072 or 4096",
        ),
        (
            lambda: _pki.check_key_options("rsa", 8192, "secp256r1"),
            "key_size 8192 is not supported for RSA; use 2048, 3072 or 4096",
        ),
    ],
)
def test_bad_names_and_sizes_give_one_line(call, message: str) -> None:
    with pytest.raises(CertificateError) as info:
        call()

    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_good_names_and_sizes_are_accepted() -> None:
    names = _pki.parse_san(
        [
            "email:first.last+rpa@mail.example.com",
            "upn:röbot01@corp.example.com",
            "uri:https://rpa.example.com/robots/robot%2001?x=1",
            "uri:ldaps://user@dc1.corp.example.com:636/cn=robot01",
            "dns:robot01.example.com",
            "dns:3com.example",
            "uri:https://192.0.2.10/robots",
            "upn:robot01@CORP",
        ]
    )

    assert len(names) == 8
    for size in _pki.RSA_KEY_SIZES:
        _pki.check_key_options("rsa", size, "secp256r1")


def test_san_of_each_kind_lints_clean(tmp_path: Path, ca: Identity) -> None:
    made = make_identity(
        "client_auth",
        "robot all names",
        issuer=ca,
        subject={"email_address": "robot@example.com"},
        san=[
            "email:robot.alias@example.com",
            "upn:robot01@corp.example.com",
            "uri:https://rpa.example.com/robots/robot01",
            "uri:https://rpa.example.com:8443/robots/robot%2001?x=1#top",
            "dns:robot01.example.com",
        ],
    )
    leaf = write_pem(tmp_path / "leaf.pem", made.cert)

    result = pkilint("lint_pkix_cert", leaf)
    text = run("openssl", "x509", "-in", str(leaf), "-noout", "-ext", "subjectAltName")

    assert result.returncode == 0 and result.stdout.strip() == "", (
        result.stdout + result.stderr
    )
    for shown in (
        "email:robot.alias@example.com",
        "email:robot@example.com",
        # OpenSSL 3 prints the UPN otherName as "UPN::<value>"; older builds use one colon.
        "robot01@corp.example.com",
        "UPN:",
        "URI:https://rpa.example.com/robots/robot01",
        "DNS:robot01.example.com",
    ):
        assert shown in text.stdout, text.stdout


def test_pkilint_flags_what_parse_san_now_refuses(tmp_path: Path, ca: Identity) -> None:
    # The names the validation refuses are the ones pkilint reports, so the refusal is not arbitrary.
    subject = _pki.build_subject({"common_name": "robot bad"})
    key = _pki.generate_private_key("ecdsa", 2048, "secp256r1")
    cert = _pki.build_certificate(
        purpose="client_auth",
        subject=subject,
        san=[x509.RFC822Name("foo"), x509.DNSName("bad host_name!")],
        extra_ekus=[],
        public_key=key.public_key(),
        valid_days=30,
        issuer_cert=ca.cert,
        issuer_key=ca.key,
    )

    result = pkilint("lint_pkix_cert", write_pem(tmp_path / "bad.pem", cert))

    assert "ERROR" in result.stdout, result.stdout


def test_damaged_certificate_message_names_no_parser_internals(
    client: Identity,
) -> None:
    der = _pki.cert_der(client.cert)

    for data in (
        der[:100],
        _pki.cert_pem(client.cert)[:300] + b"\n-----END CERTIFICATE-----\n",
    ):
        with pytest.raises(CertificateError) as info:
            _pki.load_certificates(data, source="cert.pem")
        message = str(info.value)
        assert message == (
            "cert.pem is not a valid PEM/DER certificate (truncated or damaged);"
            " give a complete PEM or DER certificate file"
        )


def test_key_and_chain_messages_read_as_one_sentence(
    ca: Identity, intermediate: Identity, client: Identity
) -> None:
    encrypted = _pki.serialize_private_key(client.key, "s3cret")
    damaged = _pki.serialize_private_key(client.key, None)[:120]

    with pytest.raises(CertificateError) as wrong:
        _pki.load_private_key(
            encrypted, "nope", source="key.pem", or_else="set force: true"
        )
    with pytest.raises(CertificateError) as broken:
        _pki.load_private_key(damaged, None, source="key.pem")
    with pytest.raises(CertificateError) as link:
        _pki.verify_chain(client.cert, [ca.cert])
    with pytest.raises(CertificateError) as empty:
        _pki.find_leaf([], None, source="bundle.pem")

    assert str(wrong.value) == (
        "cannot decrypt key.pem: wrong passphrase; give the passphrase the key was written with,"
        " or set force: true"
    )
    assert str(broken.value) == (
        "key.pem is not a valid private key (truncated, damaged or an unknown format);"
        " give a complete PEM or DER private key file"
    )
    assert str(link.value).startswith(
        "chain certificate 1 (CN=Robot Root CA,O=Example Robots,C=DE) did not issue the certificate;"
    )
    assert str(empty.value) == (
        "bundle.pem holds no certificate; give the file that holds the certificate"
    )
