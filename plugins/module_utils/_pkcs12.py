# This file is internal to the snowrpa.robot_certs collection and may change in any release.
"""Reading and writing PKCS#12 files, and telling their encryption profile from the ASN.1."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import typing as t
import warnings

from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    CertificateError,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._pki import (
    order_chain,
    public_key_matches,
)

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
    from cryptography.hazmat.primitives.serialization import pkcs12
except ImportError:  # pragma: no cover - reported through _pki.HAS_CRYPTOGRAPHY
    pass

PROFILES = ("modern", "legacy")
# Windows 10 / Server 2019 (build 17763) is the first build that imports AES-256 PKCS#12; older ones call it a wrong password.
MODERN_MIN_OS_BUILD = 17763
# OpenSSL's default iteration count; Windows and Java open these quickly, and re-reading for idempotency stays cheap.
KDF_ROUNDS = 2048


@dataclasses.dataclass(frozen=True)
class Pkcs12Contents:
    """What a PKCS#12 file holds."""

    private_key: PrivateKeyTypes | None
    # the leaf: the certificate whose public key matches the key
    certificate: x509.Certificate
    # the other certificates, ordered from the leaf's issuer to the root
    chain: tuple[x509.Certificate, ...]
    friendly_name: str | None
    profile: str  # "modern" | "legacy" | "other": PBE profile read from the file


def resolve_profile(profile: str, target_os_build: int | None) -> str:
    """The concrete profile for PROFILE: auto is legacy unless TARGET_OS_BUILD is 17763 or later."""
    if profile in PROFILES:
        return profile
    if profile != "auto":
        raise CertificateError(
            f"pkcs12_profile {profile!r} is not supported; use modern, legacy or auto"
        )
    if target_os_build is not None and target_os_build >= MODERN_MIN_OS_BUILD:
        return "modern"
    return "legacy"


def dump_pkcs12(
    private_key: PrivateKeyTypes,
    certificate: x509.Certificate,
    chain: t.Sequence[x509.Certificate],
    *,
    passphrase: str,
    friendly_name: str | None,
    profile: str,
) -> bytes:
    """Serialize key, leaf and chain with the encryption of PROFILE (modern or legacy)."""
    if not passphrase:
        raise CertificateError(
            "pkcs12_passphrase must not be empty; Windows import needs a password"
        )
    builder = serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(
        KDF_ROUNDS
    )
    if profile == "modern":
        builder = builder.key_cert_algorithm(
            pkcs12.PBES.PBESv2SHA256AndAES256CBC
        ).hmac_hash(hashes.SHA256())
    elif profile == "legacy":
        builder = builder.key_cert_algorithm(
            pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC
        ).hmac_hash(hashes.SHA1())
    else:
        raise CertificateError(
            f"pkcs12 profile {profile!r} is not supported; use modern or legacy"
        )
    name = friendly_name.encode("utf-8") if friendly_name else None
    return pkcs12.serialize_key_and_certificates(
        name,
        private_key,  # type: ignore[arg-type]
        certificate,
        list(chain) or None,
        builder.build(passphrase.encode("utf-8")),
    )


def reencode_pkcs12(
    contents: Pkcs12Contents, *, passphrase: str, profile: str
) -> bytes:
    """The same key, leaf, chain and leaf friendly name serialized again with PROFILE, in memory."""
    if contents.private_key is None:
        raise CertificateError(
            "the PKCS#12 holds no private key, so it cannot be re-encoded; export the certificate with its key"
        )
    return dump_pkcs12(
        contents.private_key,
        contents.certificate,
        contents.chain,
        passphrase=passphrase,
        friendly_name=contents.friendly_name,
        profile=profile,
    )


# Minimal DER walk ---------------------------------------------------------------------------

_OID_DATA = "1.2.840.113549.1.7.1"
_OID_ENCRYPTED_DATA = "1.2.840.113549.1.7.6"
_OID_SHROUDED_KEY_BAG = "1.2.840.113549.1.12.10.1.2"
_OID_PBES2 = "1.2.840.113549.1.5.13"
_OID_PBKDF2 = "1.2.840.113549.1.5.12"
_OID_HMAC_SHA256 = "1.2.840.113549.2.9"
_OID_AES256_CBC = "2.16.840.1.101.3.4.1.42"
_OID_3DES_PBE = "1.2.840.113549.1.12.1.3"
_OID_SHA1 = "1.3.14.3.2.26"
_OID_SHA256 = "2.16.840.1.101.3.4.2.1"
_MODERN_PBE = f"{_OID_PBES2}/{_OID_PBKDF2}/{_OID_HMAC_SHA256}/{_OID_AES256_CBC}"


class _DerError(ValueError):
    pass


def _read_tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """Tag, value start and value end of the element at OFFSET (definite lengths only)."""
    if offset + 2 > len(data):
        raise _DerError("truncated")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise _DerError("high tag numbers are not used in PKCS#12")
    first = data[offset + 1]
    start = offset + 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise _DerError("indefinite length")
    else:
        count = first & 0x7F
        if count > 4 or start + count > len(data):
            raise _DerError("bad length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise _DerError("truncated")
    return tag, start, end


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    items = []
    offset = start
    while offset < end:
        tag, value_start, value_end = _read_tlv(data, offset)
        items.append((tag, value_start, value_end))
        offset = value_end
    return items


def _oid(data: bytes, start: int, end: int) -> str:
    raw = data[start:end]
    if not raw:
        raise _DerError("empty OID")
    first = raw[0]
    parts = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    value = 0
    for byte in raw[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(p) for p in parts)


def _expect(item: tuple[int, int, int], tag: int) -> tuple[int, int]:
    if item[0] != tag:
        raise _DerError(f"expected tag {tag:#x}, found {item[0]:#x}")
    return item[1], item[2]


def _algorithm(data: bytes, start: int, end: int) -> str:
    """AlgorithmIdentifier as a path of OIDs; PBES2 includes its KDF, PRF and cipher."""
    parts = _children(data, start, end)
    oid = _oid(data, *_expect(parts[0], 0x06))
    if oid != _OID_PBES2 or len(parts) < 2:
        return oid
    kdf, scheme = _children(data, *_expect(parts[1], 0x30))[:2]
    kdf_parts = _children(data, *_expect(kdf, 0x30))
    kdf_oid = _oid(data, *_expect(kdf_parts[0], 0x06))
    prf = "1.2.840.113549.2.7"  # PBKDF2's default PRF is HMAC-SHA1 when the field is absent.
    if kdf_oid == _OID_PBKDF2 and len(kdf_parts) > 1:
        for tag, value_start, value_end in _children(
            data, *_expect(kdf_parts[1], 0x30)
        ):
            if tag == 0x30:
                prf = _oid(
                    data, *_expect(_children(data, value_start, value_end)[0], 0x06)
                )
    cipher = _oid(data, *_expect(_children(data, *_expect(scheme, 0x30))[0], 0x06))
    return f"{oid}/{kdf_oid}/{prf}/{cipher}"


def _safe_bag_algorithms(data: bytes, start: int, end: int) -> list[str]:
    found = []
    for bag in _children(data, start, end):
        bag_parts = _children(data, *_expect(bag, 0x30))
        if _oid(data, *_expect(bag_parts[0], 0x06)) == _OID_SHROUDED_KEY_BAG:
            wrapper = _children(data, *_expect(bag_parts[1], 0xA0))
            epki = _children(data, *_expect(wrapper[0], 0x30))
            found.append(_algorithm(data, *_expect(epki[0], 0x30)))
    return found


def pkcs12_algorithms(data: bytes) -> dict[str, list[str]] | None:
    """Encryption algorithms of the key bags and certificate containers, and the MAC digest; None if unparseable."""
    try:
        top = _children(data, *_expect(_read_tlv(data, 0), 0x30))
        auth_safe = _children(data, *_expect(top[1], 0x30))
        if _oid(data, *_expect(auth_safe[0], 0x06)) != _OID_DATA:
            return None
        outer = _children(data, *_expect(auth_safe[1], 0xA0))
        octets = _expect(outer[0], 0x04)
        keys: list[str] = []
        certs: list[str] = []
        for info in _children(data, *_expect(_read_tlv(data, octets[0]), 0x30)):
            info_parts = _children(data, *_expect(info, 0x30))
            content_type = _oid(data, *_expect(info_parts[0], 0x06))
            content = _children(data, *_expect(info_parts[1], 0xA0))[0]
            if content_type == _OID_DATA:
                keys += _safe_bag_algorithms(
                    data, *_expect(_read_tlv(data, _expect(content, 0x04)[0]), 0x30)
                )
            elif content_type == _OID_ENCRYPTED_DATA:
                encrypted = _children(data, *_expect(content, 0x30))
                content_info = _children(data, *_expect(encrypted[1], 0x30))
                certs.append(_algorithm(data, *_expect(content_info[1], 0x30)))
            else:
                certs.append(content_type)
        mac: list[str] = []
        if len(top) > 2:
            digest_info = _children(
                data, *_expect(_children(data, *_expect(top[2], 0x30))[0], 0x30)
            )
            mac.append(
                _oid(
                    data,
                    *_expect(_children(data, *_expect(digest_info[0], 0x30))[0], 0x06),
                )
            )
        return {"key": keys, "certificates": certs, "mac": mac}
    except (_DerError, IndexError):
        return None


def detect_pkcs12_profile(data: bytes) -> str:
    """modern, legacy or other, from the PBE algorithms and MAC digest recorded in the file."""
    algorithms = pkcs12_algorithms(data)
    if not algorithms or not algorithms["key"] or not algorithms["mac"]:
        return "other"
    used = set(algorithms["key"] + algorithms["certificates"])
    mac = set(algorithms["mac"])
    if used == {_MODERN_PBE} and mac == {_OID_SHA256}:
        return "modern"
    if used == {_OID_3DES_PBE} and mac == {_OID_SHA1}:
        return "legacy"
    return "other"


# Comparison ----------------------------------------------------------------------------------
# cert_export compares the existing file on every run. cryptography opens it (MAC, decryption and its
# RSA key consistency check, a sizeable part of a second per RSA file); the decrypted key and
# certificates are then compared byte for byte.


def pkcs12_matches(
    data: bytes,
    passphrase: str,
    *,
    key_der: bytes,
    cert_ders: t.Sequence[bytes],
    friendly_name: str | None,
) -> bool:
    """True only when DATA opens with PASSPHRASE and holds exactly these items.

    KEY_DER is the unencrypted PKCS#8 key, CERT_DERS the leaf then its chain. False means "not
    proven equal": the caller then opens the file again to find out what differs.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            parsed = pkcs12.load_pkcs12(data, passphrase.encode("utf-8"))
    except (ValueError, TypeError):
        return False
    if parsed.key is None or parsed.cert is None:
        return False
    found_key = parsed.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    found_certs = [parsed.cert.certificate] + [
        entry.certificate for entry in parsed.additional_certs
    ]
    name = parsed.cert.friendly_name
    return (
        found_key == key_der
        and [c.public_bytes(serialization.Encoding.DER) for c in found_certs]
        == list(cert_ders)
        and (name.decode("utf-8", "replace") if name is not None else None)
        == friendly_name
    )


# Reading ------------------------------------------------------------------------------------


def _as_text(data: bytes) -> bytes:
    """DATA as ASCII-compatible bytes; Windows PowerShell 5.1's Out-File writes UTF-16 with a BOM."""
    for bom, codec in (
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
        (b"\xef\xbb\xbf", "utf-8"),
    ):
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec).encode("ascii")
            except (UnicodeDecodeError, UnicodeEncodeError):
                return data
    return data


def _looks_like_base64_pkcs12(data: bytes) -> bool:
    text = _as_text(data).strip()
    if not text or len(text) < 16:
        return False
    try:
        decoded = base64.b64decode(b"".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return decoded[:1] == b"\x30"


def _is_pfx_structure(data: bytes) -> bool:
    try:
        top = _children(data, *_expect(_read_tlv(data, 0), 0x30))
        return top[0][0] == 0x02 and top[1][0] == 0x30
    except (_DerError, IndexError):
        # Indefinite-length (BER) files are valid PKCS#12 too; the outer tag is the best hint then.
        return data[:2] == b"\x30\x80"


def load_pkcs12(
    data: bytes, passphrase: str | None, *, source: str, require_key: bool = True
) -> Pkcs12Contents:
    """Parse a PKCS#12 file, failing with one line naming SOURCE for every common mistake."""
    if b"-----BEGIN" in _as_text(data[:4096]):
        raise CertificateError(
            f"{source} is a PEM file, not a PKCS#12 (.pfx/.p12); give it as certificate and key paths instead"
        )
    if _looks_like_base64_pkcs12(data):
        raise CertificateError(
            f"{source} is base64 text, not the binary PKCS#12 file; decode it first (base64 -d or certutil -decode)"
        )
    if not _is_pfx_structure(data):
        raise CertificateError(f"{source} is not a PKCS#12 file; give a .pfx/.p12 file")

    profile = detect_pkcs12_profile(data)
    parsed = None
    candidates = [passphrase.encode("utf-8")] if passphrase else [None, b""]
    for password in candidates:
        try:
            # Files written by Windows and Java are often BER; cryptography warns and parses them anyway.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                parsed = pkcs12.load_pkcs12(data, password)
            break
        except ValueError:
            continue
        except Exception:
            raise CertificateError(
                f"{source} is a damaged or unsupported PKCS#12 file; export it again as a .pfx/.p12 file"
            ) from None
    if parsed is None:
        if passphrase:
            raise CertificateError(
                f"cannot open {source}: wrong pkcs12 passphrase, or an encryption cryptography cannot read;"
                " give the passphrase the file was exported with"
            )
        raise CertificateError(
            f"cannot open {source}: the file is password protected; give its passphrase"
        )

    key = parsed.key
    entries = ([parsed.cert] if parsed.cert is not None else []) + list(
        parsed.additional_certs
    )
    if key is None and require_key:
        raise CertificateError(
            f"{source} holds no private key (a certificate-only or trust store file); export the certificate with its private key"
        )
    if not entries:
        raise CertificateError(
            f"{source} holds no certificate; export the certificate together with its key"
        )
    if key is not None:
        leaf_entry = next(
            (e for e in entries if public_key_matches(key, e.certificate)), None
        )
        if leaf_entry is None:
            raise CertificateError(
                f"{source} holds a private key that matches none of its certificates; export the certificate together with its own key"
            )
    else:
        leaf_entry = parsed.cert or entries[0]
    others = [e.certificate for e in entries if e is not leaf_entry]
    name = leaf_entry.friendly_name
    return Pkcs12Contents(
        private_key=key,
        certificate=leaf_entry.certificate,
        chain=tuple(order_chain(leaf_entry.certificate, others)),
        friendly_name=name.decode("utf-8", "replace") if name is not None else None,
        profile=profile,
    )


__all__ = (
    "KDF_ROUNDS",
    "MODERN_MIN_OS_BUILD",
    "PROFILES",
    "Pkcs12Contents",
    "detect_pkcs12_profile",
    "dump_pkcs12",
    "load_pkcs12",
    "pkcs12_algorithms",
    "pkcs12_matches",
    "reencode_pkcs12",
    "resolve_profile",
)
