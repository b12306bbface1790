# This file is internal to the snowrpa.robot_certs collection and may change in any release.
"""Reading and writing PKCS#12 files, and telling their encryption profile from the ASN.1."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
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
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.serialization import pkcs12

    # Before cryptography 43, 3DES sat with the other ciphers.
    try:
        from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    except ImportError:  # pragma: no cover
        from cryptography.hazmat.primitives.ciphers.algorithms import (  # type: ignore[attr-defined,no-redef]
            TripleDES,
        )
except ImportError:  # pragma: no cover - reported through _pki.HAS_CRYPTOGRAPHY
    pass

PROFILES = ("modern", "legacy")
# Windows 10 / Server 2019 (build 17763) is the first build that imports AES-256 PKCS#12 (REFERENCE.md section 3).
MODERN_MIN_OS_BUILD = 17763
# OpenSSL's default iteration count; Windows and Java open these quickly, and re-reading for idempotency stays cheap.
KDF_ROUNDS = 2048


@dataclasses.dataclass(frozen=True)
class Pkcs12Contents:
    """What a PKCS#12 file holds."""

    private_key: PrivateKeyTypes | None
    certificate: (
        x509.Certificate
    )  # the leaf: the certificate whose public key matches the key
    chain: tuple[
        x509.Certificate, ...
    ]  # the other certificates, ordered from the leaf's issuer to the root
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


# Fast comparison ------------------------------------------------------------------------------
# Opening a PKCS#12 with cryptography runs its RSA consistency check (a large part of a second per
# file), and cert_export compares the existing file on every run. For the two profiles we write,
# the bags are decrypted here instead and compared byte for byte; anything else takes the full path.

_OID_CERT_BAG = "1.2.840.113549.1.12.10.1.3"
_OID_X509_CERT = "1.2.840.113549.1.9.22.1"
_OID_FRIENDLY_NAME = "1.2.840.113549.1.9.20"


def _pkcs12_kdf(
    hash_name: str, password: bytes, salt: bytes, purpose: int, rounds: int, size: int
) -> bytes:
    """RFC 7292 appendix B.2 key derivation (PASSWORD already BMP-encoded with its terminator)."""
    block = hashlib.new(hash_name).block_size

    def stretch(value: bytes) -> bytes:
        # Repeat VALUE up to the next multiple of the hash block size.
        if not value:
            return b""
        length = block * ((len(value) + block - 1) // block)
        return (value * (length // len(value) + 1))[:length]

    material = bytearray(stretch(salt) + stretch(password))
    diversifier = bytes([purpose]) * block
    out = b""
    while len(out) < size:
        digest = hashlib.new(hash_name, diversifier + bytes(material)).digest()
        for _round in range(rounds - 1):
            digest = hashlib.new(hash_name, digest).digest()
        out += digest
        addend = (
            int.from_bytes((digest * (block // len(digest) + 1))[:block], "big") + 1
        )
        for offset in range(0, len(material), block):
            total = int.from_bytes(material[offset : offset + block], "big") + addend
            material[offset : offset + block] = (total % (1 << (8 * block))).to_bytes(
                block, "big"
            )
    return out[:size]


def _integer(data: bytes, item: tuple[int, int, int]) -> int:
    return int.from_bytes(data[slice(*_expect(item, 0x02))], "big")


def _octets(data: bytes, item: tuple[int, int, int], tag: int = 0x04) -> bytes:
    return data[slice(*_expect(item, tag))]


def _unpad(plain: bytes, block: int) -> bytes | None:
    pad = plain[-1] if plain else 0
    if not 1 <= pad <= block or plain[-pad:] != bytes([pad]) * pad:
        return None
    return plain[:-pad]


def _decrypt(
    data: bytes, algorithm: tuple[int, int], ciphertext: bytes, passphrase: str
) -> bytes | None:
    """Plain text of CIPHERTEXT for 3DES-PBE or PBES2/PBKDF2-SHA256/AES-256-CBC; None for anything else."""
    parts = _children(data, *algorithm)
    oid = _oid(data, *_expect(parts[0], 0x06))
    if oid == _OID_3DES_PBE:
        salt_item, rounds_item = _children(data, *_expect(parts[1], 0x30))[:2]
        salt, rounds = _octets(data, salt_item), _integer(data, rounds_item)
        bmp = passphrase.encode("utf-16-be") + b"\x00\x00"
        key = _pkcs12_kdf("sha1", bmp, salt, 1, rounds, 24)
        iv = _pkcs12_kdf("sha1", bmp, salt, 2, rounds, 8)
        cipher = Cipher(TripleDES(key), modes.CBC(iv))
        block = 8
    elif _algorithm(data, *algorithm) == _MODERN_PBE:
        kdf, scheme = _children(data, *_expect(parts[1], 0x30))[:2]
        kdf_params = _children(
            data, *_expect(_children(data, *_expect(kdf, 0x30))[1], 0x30)
        )
        salt, rounds = _octets(data, kdf_params[0]), _integer(data, kdf_params[1])
        iv = _octets(data, _children(data, *_expect(scheme, 0x30))[1])
        key = hashlib.pbkdf2_hmac(
            "sha256", passphrase.encode("utf-8"), salt, rounds, 32
        )
        cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
        block = 16
    else:
        return None
    if not ciphertext or len(ciphertext) % block:
        return None
    decryptor = cipher.decryptor()
    return _unpad(decryptor.update(ciphertext) + decryptor.finalize(), block)


def _friendly_name(data: bytes, bag_parts: list[tuple[int, int, int]]) -> str | None:
    if len(bag_parts) < 3:
        return None
    for attribute in _children(data, *_expect(bag_parts[2], 0x31)):
        attr_parts = _children(data, *_expect(attribute, 0x30))
        if _oid(data, *_expect(attr_parts[0], 0x06)) == _OID_FRIENDLY_NAME:
            value = _children(data, *_expect(attr_parts[1], 0x31))[0]
            return _octets(data, value, 0x1E).decode("utf-16-be")
    return None


def _read_bags(data: bytes, passphrase: str, found: dict[str, t.Any]) -> bool:
    """Collect the key, the certificates and the leaf's friendly name from DATA (one SafeContents)."""
    for bag in _children(data, *_expect(_read_tlv(data, 0), 0x30)):
        parts = _children(data, *_expect(bag, 0x30))
        kind = _oid(data, *_expect(parts[0], 0x06))
        value = _children(data, *_expect(parts[1], 0xA0))[0]
        if kind == _OID_SHROUDED_KEY_BAG:
            epki = _children(data, *_expect(value, 0x30))
            plain = _decrypt(
                data, _expect(epki[0], 0x30), _octets(data, epki[1]), passphrase
            )
            if plain is None:
                return False
            found["keys"].append(plain)
        elif kind == _OID_CERT_BAG:
            cert_parts = _children(data, *_expect(value, 0x30))
            if _oid(data, *_expect(cert_parts[0], 0x06)) != _OID_X509_CERT:
                return False
            der = _octets(data, _children(data, *_expect(cert_parts[1], 0xA0))[0])
            found["certs"].append(der)
            found["names"].append(_friendly_name(data, parts))
        else:
            return False
    return True


def _open_fast(data: bytes, passphrase: str) -> dict[str, list[t.Any]] | None:
    """The decrypted bags of DATA when its MAC verifies with PASSPHRASE; None when this reader cannot say."""
    try:
        top = _children(data, *_expect(_read_tlv(data, 0), 0x30))
        auth_safe = _children(data, *_expect(top[1], 0x30))
        content = _octets(data, _children(data, *_expect(auth_safe[1], 0xA0))[0])
        mac_data = _children(data, *_expect(top[2], 0x30))
        digest_info = _children(data, *_expect(mac_data[0], 0x30))
        mac_algorithm = _children(data, *_expect(digest_info[0], 0x30))[0]
        hash_name = {_OID_SHA1: "sha1", _OID_SHA256: "sha256"}.get(
            _oid(data, *_expect(mac_algorithm, 0x06))
        )
        if hash_name is None:
            return None
        salt = _octets(data, mac_data[1])
        rounds = _integer(data, mac_data[2]) if len(mac_data) > 2 else 1
        bmp = passphrase.encode("utf-16-be") + b"\x00\x00"
        size = hashlib.new(hash_name).digest_size
        mac_key = _pkcs12_kdf(hash_name, bmp, salt, 3, rounds, size)
        expected = hmac.new(mac_key, content, hash_name).digest()
        if not hmac.compare_digest(expected, _octets(data, digest_info[1])):
            return None

        found: dict[str, list[t.Any]] = {"keys": [], "certs": [], "names": []}
        for info in _children(content, *_expect(_read_tlv(content, 0), 0x30)):
            info_parts = _children(content, *_expect(info, 0x30))
            content_type = _oid(content, *_expect(info_parts[0], 0x06))
            inner = _children(content, *_expect(info_parts[1], 0xA0))[0]
            if content_type == _OID_DATA:
                safe: bytes | None = _octets(content, inner)
            elif content_type == _OID_ENCRYPTED_DATA:
                encrypted = _children(content, *_expect(inner, 0x30))
                encrypted_info = _children(content, *_expect(encrypted[1], 0x30))
                safe = _decrypt(
                    content,
                    _expect(encrypted_info[1], 0x30),
                    _octets(content, encrypted_info[2], 0x80),
                    passphrase,
                )
            else:
                return None
            if safe is None or not _read_bags(safe, passphrase, found):
                return None
    except (_DerError, IndexError, ValueError):
        return None
    return found


def pkcs12_matches(
    data: bytes,
    passphrase: str,
    *,
    key_der: bytes,
    cert_ders: t.Sequence[bytes],
    friendly_name: str | None,
) -> bool:
    """True only when DATA (a modern or legacy file) verifies with PASSPHRASE and holds exactly these items.

    KEY_DER is the unencrypted PKCS#8 key, CERT_DERS the leaf then its chain. False means "not
    proven equal": the caller then opens the file the slow way to find out what differs.
    """
    found = _open_fast(data, passphrase)
    return (
        found is not None
        and found["keys"] == [key_der]
        and found["certs"] == list(cert_ders)
        and bool(found["names"])
        and found["names"][0] == friendly_name
    )


def _load_fast(
    data: bytes, passphrase: str | None, profile: str
) -> Pkcs12Contents | None:
    """load_pkcs12 for the profiles we write, without cryptography's costly RSA key check.

    The MAC proves the file intact and the passphrase right; the key is checked against the
    leaf's public key. Anything unusual returns None and takes cryptography's full parser.
    """
    if profile not in PROFILES or not passphrase:
        return None
    found = _open_fast(data, passphrase)
    if found is None or len(found["keys"]) != 1 or not found["certs"]:
        return None
    try:
        key = serialization.load_der_private_key(
            found["keys"][0], None, unsafe_skip_rsa_key_validation=True
        )
        certs = [x509.load_der_x509_certificate(der) for der in found["certs"]]
    except (ValueError, TypeError):
        return None
    leaf_index = next(
        (i for i, c in enumerate(certs) if public_key_matches(key, c)), None
    )
    if leaf_index is None:
        return None
    leaf = certs[leaf_index]
    others = [c for i, c in enumerate(certs) if i != leaf_index]
    return Pkcs12Contents(
        private_key=key,
        certificate=leaf,
        chain=tuple(order_chain(leaf, others)),
        friendly_name=found["names"][leaf_index],
        profile=profile,
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
    fast = _load_fast(data, passphrase, profile)
    if fast is not None:
        return fast

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
                f"{source} is a damaged or unsupported PKCS#12 file"
            ) from None
    if parsed is None:
        hint = (
            "wrong pkcs12 passphrase"
            if passphrase
            else "the file is password protected; give its passphrase"
        )
        raise CertificateError(
            f"cannot open {source}: {hint} (or an unsupported encryption)"
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
                f"{source} holds a private key that matches none of its certificates"
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
    "resolve_profile",
)
