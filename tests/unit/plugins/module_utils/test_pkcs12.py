"""PKCS#12 writing, reading and profile detection, checked with openssl, keytool and real-world files."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import cryptography_vectors
import pytest
from cryptography.hazmat.primitives import serialization

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import _pkcs12, _pki
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    CertificateError,
)
from tests.unit.plugins.module_utils.pki_fixtures import (
    Identity,
    make_identity,
    run,
    write_pem,
)

VECTORS = Path(os.path.dirname(cryptography_vectors.__file__)) / "pkcs12"


@pytest.fixture(scope="module")
def pki() -> dict[str, Identity]:
    root = make_identity("ca", "Robot Root CA")
    issuing = make_identity("ca", "Robot Issuing CA", issuer=root)
    leaf = make_identity("client_auth", "robot01", issuer=issuing, key_type="ecdsa")
    return {"root": root, "issuing": issuing, "leaf": leaf}


def _dump(
    pki: dict[str, Identity], profile: str, name: str | None = "robot01 client"
) -> bytes:
    return _pkcs12.dump_pkcs12(
        pki["leaf"].key,
        pki["leaf"].cert,
        [pki["issuing"].cert, pki["root"].cert],
        passphrase="Robot-Pass 1",
        friendly_name=name,
        profile=profile,
    )


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("modern", ["MAC: sha256", "PBES2, PBKDF2, AES-256-CBC", "PRF hmacWithSHA256"]),
        (
            "legacy",
            [
                "MAC: sha1",
                "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC",
                "PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC",
            ],
        ),
    ],
)
def test_openssl_shows_profile_algorithms(
    tmp_path: Path, pki: dict[str, Identity], profile: str, expected: list[str]
) -> None:
    path = tmp_path / "robot.p12"
    path.write_bytes(_dump(pki, profile))

    info = run(
        "openssl",
        "pkcs12",
        "-info",
        "-noout",
        "-in",
        str(path),
        "-passin",
        "pass:Robot-Pass 1",
    )

    assert info.returncode == 0, info.stderr
    for text in expected:
        assert text in info.stderr + info.stdout
    other = "AES-256" if profile == "legacy" else "TripleDES"
    assert other not in info.stderr + info.stdout
    assert _pkcs12.detect_pkcs12_profile(path.read_bytes()) == profile


@pytest.mark.parametrize("profile", ["modern", "legacy"])
def test_keytool_opens_both_profiles(
    tmp_path: Path, pki: dict[str, Identity], profile: str
) -> None:
    path = tmp_path / "robot.p12"
    path.write_bytes(_dump(pki, profile))

    listing = run(
        "keytool",
        "-list",
        "-storetype",
        "PKCS12",
        "-keystore",
        str(path),
        "-storepass",
        "Robot-Pass 1",
    )

    assert listing.returncode == 0, listing.stdout + listing.stderr
    assert "robot01 client" in listing.stdout and "PrivateKeyEntry" in listing.stdout
    assert _pki.sha256_fingerprint(pki["leaf"].cert) in listing.stdout


@pytest.mark.parametrize("profile", ["modern", "legacy"])
def test_openssl_extracts_key_and_ordered_chain(
    tmp_path: Path, pki: dict[str, Identity], profile: str
) -> None:
    path = tmp_path / "robot.p12"
    path.write_bytes(_dump(pki, profile))

    certs = run(
        "openssl", "pkcs12", "-in", str(path), "-passin", "pass:Robot-Pass 1", "-nokeys"
    )
    key = run(
        "openssl",
        "pkcs12",
        "-in",
        str(path),
        "-passin",
        "pass:Robot-Pass 1",
        "-nocerts",
        "-nodes",
    )

    assert certs.returncode == 0 and key.returncode == 0
    found = _pki.load_certificates(certs.stdout.encode(), source="openssl output")
    assert set(found) == {pki["leaf"].cert, pki["issuing"].cert, pki["root"].cert}
    extracted = serialization.load_pem_private_key(key.stdout.encode(), None)
    assert _pki.private_key_der(extracted) == _pki.private_key_der(pki["leaf"].key)


@pytest.mark.parametrize("profile", ["modern", "legacy"])
def test_load_round_trip(pki: dict[str, Identity], profile: str) -> None:
    contents = _pkcs12.load_pkcs12(
        _dump(pki, profile, "Robot ☺ 01"), "Robot-Pass 1", source="robot.p12"
    )

    assert contents.certificate == pki["leaf"].cert
    assert contents.chain == (pki["issuing"].cert, pki["root"].cert)
    assert contents.friendly_name == "Robot ☺ 01"
    assert contents.profile == profile
    assert contents.private_key is not None
    assert _pki.private_key_der(contents.private_key) == _pki.private_key_der(
        pki["leaf"].key
    )


def test_openssl_written_files_are_classified(
    tmp_path: Path, pki: dict[str, Identity]
) -> None:
    key = tmp_path / "key.pem"
    key.write_bytes(_pki.serialize_private_key(pki["leaf"].key, None))
    cert = write_pem(tmp_path / "cert.pem", pki["leaf"].cert)
    common = [
        "openssl",
        "pkcs12",
        "-export",
        "-inkey",
        str(key),
        "-in",
        str(cert),
        "-passout",
        "pass:pw",
    ]

    modern = run(*common, "-out", str(tmp_path / "m.p12"))
    legacy = run(
        *common,
        "-out",
        str(tmp_path / "l.p12"),
        "-keypbe",
        "PBE-SHA1-3DES",
        "-certpbe",
        "PBE-SHA1-3DES",
        "-macalg",
        "sha1",
    )
    mixed = run(
        *common,
        "-out",
        str(tmp_path / "x.p12"),
        "-keypbe",
        "PBE-SHA1-3DES",
        "-certpbe",
        "PBE-SHA1-3DES",
        "-macalg",
        "sha256",
    )

    assert modern.returncode == legacy.returncode == mixed.returncode == 0
    assert _pkcs12.detect_pkcs12_profile((tmp_path / "m.p12").read_bytes()) == "modern"
    assert _pkcs12.detect_pkcs12_profile((tmp_path / "l.p12").read_bytes()) == "legacy"
    assert _pkcs12.detect_pkcs12_profile((tmp_path / "x.p12").read_bytes()) == "other"


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (None, "legacy"),
        (14393, "legacy"),
        (17762, "legacy"),
        (17763, "modern"),
        (20348, "modern"),
    ],
)
def test_auto_profile_follows_target_os_build(build: int | None, expected: str) -> None:
    assert _pkcs12.resolve_profile("auto", build) == expected
    assert _pkcs12.resolve_profile("legacy", 20348) == "legacy"


@pytest.mark.parametrize(
    ("name", "passphrase", "friendly_name"),
    [
        ("cert-key-aes256cbc.p12", "cryptography", None),
        ("cert-rc2-key-3des.p12", "cryptography", None),
        ("cert-none-key-none.p12", "cryptography", None),
        ("no-password.p12", None, "cryptography CA"),
        ("name-all-pwd.p12", "password", "name"),
        ("name-unicode-pwd.p12", "password", "☺"),
        ("name-unicode-no-pwd.p12", None, "☺"),
        ("no-name-pwd.p12", "password", None),
    ],
)
def test_real_world_files_with_keys_are_accepted(
    name: str, passphrase: str | None, friendly_name: str | None
) -> None:
    data = (VECTORS / name).read_bytes()

    contents = _pkcs12.load_pkcs12(data, passphrase, source=name)

    assert contents.private_key is not None
    assert _pki.public_key_matches(contents.private_key, contents.certificate)
    assert contents.friendly_name == friendly_name
    assert contents.profile in ("modern", "legacy", "other")


def test_real_world_rc2_file_is_not_a_profile_we_write() -> None:
    assert (
        _pkcs12.detect_pkcs12_profile((VECTORS / "cert-rc2-key-3des.p12").read_bytes())
        == "other"
    )


@pytest.mark.parametrize(
    ("name", "passphrase"),
    [
        ("java-truststore.p12", None),
        ("cert-aes256cbc-no-key.p12", "cryptography"),
        ("no-cert-name-all-pwd.p12", "password"),
    ],
)
def test_certificate_only_trust_stores_are_rejected(
    name: str, passphrase: str | None
) -> None:
    with pytest.raises(CertificateError) as info:
        _pkcs12.load_pkcs12((VECTORS / name).read_bytes(), passphrase, source=name)

    assert str(info.value).startswith(f"{name} holds no private key")
    assert "\n" not in str(info.value)


def test_trust_store_readable_when_key_not_required() -> None:
    contents = _pkcs12.load_pkcs12(
        (VECTORS / "java-truststore.p12").read_bytes(),
        None,
        source="ts",
        require_key=False,
    )

    assert contents.private_key is None
    assert len(contents.chain) + 1 == 2


def test_wrong_passphrase(pki: dict[str, Identity]) -> None:
    with pytest.raises(CertificateError) as info:
        _pkcs12.load_pkcs12(_dump(pki, "modern"), "wrong", source="robot.p12")

    assert str(info.value) == (
        "cannot open robot.p12: wrong pkcs12 passphrase, or an encryption cryptography cannot read;"
        " give the passphrase the file was exported with"
    )


def test_missing_passphrase(pki: dict[str, Identity]) -> None:
    with pytest.raises(CertificateError) as info:
        _pkcs12.load_pkcs12(_dump(pki, "legacy"), None, source="robot.p12")

    assert str(info.value) == (
        "cannot open robot.p12: the file is password protected; give its passphrase"
    )


def test_base64_text_is_named(pki: dict[str, Identity]) -> None:
    text = base64.encodebytes(_dump(pki, "legacy"))

    with pytest.raises(
        CertificateError,
        match=r"robot.p12 is base64 text, not the binary PKCS#12 file; decode it first",
    ):
        _pkcs12.load_pkcs12(text, "Robot-Pass 1", source="robot.p12")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_base64_text_from_powershell_is_named(
    pki: dict[str, Identity], encoding: str
) -> None:
    """Windows PowerShell 5.1's Out-File writes UTF-16 with a byte order mark."""
    text = base64.b64encode(_dump(pki, "legacy")).decode().encode(encoding)

    with pytest.raises(
        CertificateError, match=r"robot.pfx is base64 text, not the binary PKCS#12 file"
    ):
        _pkcs12.load_pkcs12(text, "Robot-Pass 1", source="robot.pfx")


def test_pem_file_is_named(pki: dict[str, Identity]) -> None:
    with pytest.raises(
        CertificateError, match=r"robot.p12 is a PEM file, not a PKCS#12"
    ):
        _pkcs12.load_pkcs12(_pki.cert_pem(pki["leaf"].cert), "x", source="robot.p12")


@pytest.mark.parametrize(
    "data", [b"", b"\x00\x01garbage", bytes(range(7, 71)), b"\x30\x03\x02\x01\x03"]
)
def test_not_pkcs12(data: bytes) -> None:
    with pytest.raises(
        CertificateError,
        match=r"^(blob is not a PKCS#12 file|cannot open blob|blob is a damaged)",
    ):
        _pkcs12.load_pkcs12(data, "x", source="blob")
    assert _pkcs12.detect_pkcs12_profile(data) == "other"


def test_empty_passphrase_refused_on_write(pki: dict[str, Identity]) -> None:
    with pytest.raises(CertificateError, match="must not be empty"):
        _pkcs12.dump_pkcs12(
            pki["leaf"].key,
            pki["leaf"].cert,
            [],
            passphrase="",
            friendly_name=None,
            profile="modern",
        )


def _ders(pki: dict[str, Identity]) -> list[bytes]:
    return [_pki.cert_der(pki[name].cert) for name in ("leaf", "issuing", "root")]


@pytest.mark.parametrize("profile", ["modern", "legacy"])
def test_fast_match_proves_equality(pki: dict[str, Identity], profile: str) -> None:
    data = _pkcs12.dump_pkcs12(
        pki["leaf"].key,
        pki["leaf"].cert,
        [pki["issuing"].cert, pki["root"].cert],
        passphrase="Pässwort ☺",
        friendly_name="robot ☺",
        profile=profile,
    )
    key = _pki.private_key_der(pki["leaf"].key)
    match = {"key_der": key, "cert_ders": _ders(pki), "friendly_name": "robot ☺"}

    assert _pkcs12.pkcs12_matches(data, "Pässwort ☺", **match) is True
    assert _pkcs12.pkcs12_matches(data, "Passwort ☺", **match) is False
    assert (
        _pkcs12.pkcs12_matches(
            data, "Pässwort ☺", **{**match, "friendly_name": "robot"}
        )
        is False
    )
    assert (
        _pkcs12.pkcs12_matches(
            data, "Pässwort ☺", **{**match, "cert_ders": _ders(pki)[:2]}
        )
        is False
    )
    other = _pki.private_key_der(pki["root"].key)
    assert (
        _pkcs12.pkcs12_matches(data, "Pässwort ☺", **{**match, "key_der": other})
        is False
    )
    assert _pkcs12.pkcs12_matches(data[:-5], "Pässwort ☺", **match) is False


@pytest.mark.parametrize(
    "options",
    [
        ["-keypbe", "PBE-SHA1-3DES", "-certpbe", "PBE-SHA1-3DES", "-macalg", "sha1"],
        [],
    ],
    ids=["legacy", "modern"],
)
def test_fast_match_reads_openssl_files(
    tmp_path: Path, pki: dict[str, Identity], options: list[str]
) -> None:
    """OpenSSL derives the same keys and MAC, so its files are proven equal too (an independent check of the KDF)."""
    key = tmp_path / "key.pem"
    key.write_bytes(_pki.serialize_private_key(pki["leaf"].key, None))
    cert = write_pem(tmp_path / "cert.pem", pki["leaf"].cert)
    made = run(
        "openssl", "pkcs12", "-export", "-inkey", str(key), "-in", str(cert), "-name", "robot01",
        "-passout", "pass:openssl-pass", "-out", str(tmp_path / "o.p12"), *options,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    data = (tmp_path / "o.p12").read_bytes()
    match = {
        "key_der": _pki.private_key_der(pki["leaf"].key),
        "cert_ders": [_pki.cert_der(pki["leaf"].cert)],
    }

    assert (
        _pkcs12.pkcs12_matches(data, "openssl-pass", **match, friendly_name="robot01")
        is True
    )
    assert (
        _pkcs12.pkcs12_matches(data, "other-pass", **match, friendly_name="robot01")
        is False
    )


@pytest.mark.parametrize("profile", ["modern", "legacy"])
def test_reader_agrees_with_cryptography(
    pki: dict[str, Identity], profile: str
) -> None:
    """Our files are read by the bag decryption; the result must equal cryptography's own parser."""
    from cryptography.hazmat.primitives.serialization import pkcs12

    data = _dump(pki, profile, "robot ☺")
    reference = pkcs12.load_pkcs12(data, b"Robot-Pass 1")

    ours = _pkcs12.load_pkcs12(data, "Robot-Pass 1", source="robot.p12")

    assert reference.cert is not None and reference.key is not None
    assert ours.certificate == reference.cert.certificate
    assert set(ours.chain) == {c.certificate for c in reference.additional_certs}
    assert ours.friendly_name == reference.cert.friendly_name.decode()
    assert _pki.private_key_der(ours.private_key) == _pki.private_key_der(reference.key)
