# This file is internal to the snowrpa.robot_certs collection and may change in any release.
"""Keys, certificate profiles, parsing, validation and inspection helpers built on cryptography."""

from __future__ import annotations

import datetime
import hashlib
import re
import typing as t

from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    CertificateError,
)

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import (
        ec,
        ed448,
        ed25519,
        rsa,
    )
    from cryptography.hazmat.primitives.asymmetric.types import (
        CertificateIssuerPrivateKeyTypes,
        CertificatePublicKeyTypes,
        PrivateKeyTypes,
        PublicKeyTypes,
    )
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR: ImportError | None = None
except (
    ImportError
) as _exc:  # pragma: no cover - reported by the module as a missing requirement
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = _exc

# Keep in sync with plugins/doc_fragments/cryptography_dep.py: 42.0 brought the *_utc validity
# accessors; the PKCS#12 encryption builder (38.0) and load_pkcs12 (36.0) are older.
MINIMUM_CRYPTOGRAPHY_VERSION = "42.0.0"


def require_cryptography() -> None:
    """Fail with one line when cryptography is missing or older than the minimum."""
    if not HAS_CRYPTOGRAPHY:
        raise CertificateError(
            f"the Python library cryptography >= {MINIMUM_CRYPTOGRAPHY_VERSION} is required on the controller"
            f" ({CRYPTOGRAPHY_IMPORT_ERROR}); install it into the Python that runs Ansible"
        )
    import cryptography

    found = tuple(
        int(p) for p in cryptography.__version__.split(".")[:2] if p.isdigit()
    )
    wanted = tuple(int(p) for p in MINIMUM_CRYPTOGRAPHY_VERSION.split(".")[:2])
    if found < wanted:
        raise CertificateError(
            f"cryptography {cryptography.__version__} is too old; {MINIMUM_CRYPTOGRAPHY_VERSION} or later is required"
        )


UPN_OID = "1.3.6.1.4.1.311.20.2.3"
# Robots' clocks may lag the controller's; a small backdate keeps a fresh certificate valid there.
BACKDATE = datetime.timedelta(minutes=5)

PURPOSES = ("client_auth", "code_signing", "ca")
KEY_TYPES = ("rsa", "ecdsa")
MIN_RSA_KEY_SIZE = 2048
# The sizes Windows CNG, KeyStore Explorer and AD CS templates offer; odd sizes only cause interop trouble.
RSA_KEY_SIZES = (2048, 3072, 4096)

CURVES: dict[str, t.Any] = {}
PURPOSE_EKU: dict[str, x509.ObjectIdentifier] = {}
EKU_NAMES: dict[str, x509.ObjectIdentifier] = {}
if HAS_CRYPTOGRAPHY:
    CURVES = {
        "secp256r1": ec.SECP256R1,
        "secp384r1": ec.SECP384R1,
        "secp521r1": ec.SECP521R1,
    }
    # Purpose name -> the EKU a certificate needs to be offered for that purpose on Windows.
    PURPOSE_EKU = {
        "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
        "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
    }
    _EKU_BASE = {
        "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
        "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
        "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
        "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
        "time_stamping": ExtendedKeyUsageOID.TIME_STAMPING,
        "ocsp_signing": ExtendedKeyUsageOID.OCSP_SIGNING,
        "smart_card_logon": x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.2"),
        "document_signing": x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.12"),
    }
    for _name, _oid in _EKU_BASE.items():
        EKU_NAMES[_name] = _oid
        _parts = _name.split("_")
        EKU_NAMES[_parts[0] + "".join(p.title() for p in _parts[1:])] = _oid

# The subject option's field names, in DN order (most general first); usable without cryptography.
SUBJECT_FIELD_NAMES = (
    "country_name",
    "state_or_province_name",
    "locality_name",
    "organization_name",
    "organizational_unit_name",
    "common_name",
    "email_address",
)
SUBJECT_FIELDS: dict[str, t.Any] = {}
if HAS_CRYPTOGRAPHY:
    # The order of the DN, most general first, as KeyStore Explorer and AD CS write it.
    SUBJECT_FIELDS = {
        "country_name": NameOID.COUNTRY_NAME,
        "state_or_province_name": NameOID.STATE_OR_PROVINCE_NAME,
        "locality_name": NameOID.LOCALITY_NAME,
        "organization_name": NameOID.ORGANIZATION_NAME,
        "organizational_unit_name": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "common_name": NameOID.COMMON_NAME,
        "email_address": NameOID.EMAIL_ADDRESS,
    }
# RFC 5280 upper bounds (ub-*) that pkilint enforces.
_SUBJECT_MAX = {
    "country_name": 2,
    "state_or_province_name": 128,
    "locality_name": 128,
    "organization_name": 64,
    "organizational_unit_name": 64,
    "common_name": 64,
    "email_address": 255,
}


# Inspection helpers -----------------------------------------------------------------------


def thumbprint(cert: x509.Certificate) -> str:
    """Windows thumbprint: SHA-1 of the DER certificate, 40 upper-case hex digits."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()


def sha256_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate as colon-separated upper-case hex pairs."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cert_summary(cert: x509.Certificate) -> dict[str, t.Any]:
    """Public metadata of CERT for returns and diffs (never key material)."""
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial_number": cert.serial_number,
        "not_before": _iso(cert.not_valid_before_utc),
        "not_after": _iso(cert.not_valid_after_utc),
        "thumbprint": thumbprint(cert),
        "sha256_fingerprint": sha256_fingerprint(cert),
    }


def _extension(cert: x509.Certificate, kind: type) -> t.Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def is_ca(cert: x509.Certificate) -> bool:
    """True when CERT carries basicConstraints CA:TRUE."""
    constraints = _extension(cert, x509.BasicConstraints)
    return bool(constraints is not None and constraints.ca)


def cert_allows_purpose(cert: x509.Certificate, purpose: str) -> bool:
    """True when CERT may be used for PURPOSE (client_auth, code_signing or ca)."""
    if purpose == "ca":
        usage = _extension(cert, x509.KeyUsage)
        return is_ca(cert) and (usage is None or usage.key_cert_sign)
    if purpose not in PURPOSE_EKU:
        raise CertificateError(
            f"unknown purpose {purpose!r}; use one of {', '.join(PURPOSES)}"
        )
    ekus = _extension(cert, x509.ExtendedKeyUsage)
    # Windows hides a certificate without the purpose's EKU from the robot's picker, so require it explicitly.
    if ekus is None or PURPOSE_EKU[purpose] not in list(ekus):
        return False
    usage = _extension(cert, x509.KeyUsage)
    return usage is None or usage.digital_signature


def is_issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ISSUER's name and key signed CERT."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def is_self_signed(cert: x509.Certificate) -> bool:
    return is_issued_by(cert, cert)


def split_chain(
    leaf: x509.Certificate, others: t.Iterable[x509.Certificate]
) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """(LEAF's issuers from its issuer up to the root, the OTHERS that are not on that path)."""
    pool = [c for c in others if c != leaf]
    ordered: list[x509.Certificate] = []
    current = leaf
    while not is_self_signed(current):
        parent = next(
            (c for c in pool if c not in ordered and is_issued_by(current, c)), None
        )
        if parent is None:
            break
        ordered.append(parent)
        current = parent
    unrelated: list[x509.Certificate] = []
    for cert in pool:
        if cert not in ordered and cert not in unrelated:
            unrelated.append(cert)
    return ordered, unrelated


def order_chain(
    leaf: x509.Certificate, others: t.Iterable[x509.Certificate]
) -> list[x509.Certificate]:
    """OTHERS in issuer order from LEAF's issuer up to the root; unrelated ones follow in input order."""
    ordered, unrelated = split_chain(leaf, others)
    return ordered + unrelated


def public_key_matches(private_key: PrivateKeyTypes, cert: x509.Certificate) -> bool:
    """True when CERT holds the public half of PRIVATE_KEY."""
    return public_key_der(private_key.public_key()) == public_key_der(cert.public_key())


def public_key_der(key: PublicKeyTypes) -> bytes:
    """SubjectPublicKeyInfo DER of a public KEY."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def private_key_der(key: PrivateKeyTypes) -> bytes:
    """Unencrypted PKCS#8 DER of KEY, to compare two keys; never return or log it."""
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def find_leaf(
    certs: list[x509.Certificate], private_key: PrivateKeyTypes | None, *, source: str
) -> x509.Certificate:
    """The certificate of CERTS that matches PRIVATE_KEY, or without a key the one that issued no other."""
    if not certs:
        raise CertificateError(
            f"{source} holds no certificate; give the file that holds the certificate"
        )
    if private_key is not None:
        for cert in certs:
            if public_key_matches(private_key, cert):
                return cert
        raise CertificateError(
            f"the private key does not match any certificate of {source}; give the key of that certificate"
        )
    leaves = [c for c in certs if not any(o != c and is_issued_by(o, c) for o in certs)]
    if len(leaves) != 1:
        raise CertificateError(
            f"{source} holds several unrelated certificates; give the leaf certificate separately from its chain"
        )
    return leaves[0]


# Loading ----------------------------------------------------------------------------------


def _passphrase_bytes(passphrase: str | None) -> bytes | None:
    return passphrase.encode("utf-8") if passphrase else None


def load_private_key(
    data: bytes,
    passphrase: str | None,
    *,
    source: str,
    validate: bool = True,
    or_else: str | None = None,
) -> PrivateKeyTypes:
    """Load a PEM (or DER) private key, with one-line errors naming SOURCE.

    VALIDATE=False skips cryptography's RSA consistency check (a fraction of a second per key);
    callers that do so compare the key with its certificate and call check_key before using it.
    OR_ELSE is a second remedy (such as force: true) joined to each message's own one.
    """

    def fail(problem: str, remedy: str) -> CertificateError:
        return CertificateError(
            f"{problem}; {remedy}" + (f", or {or_else}" if or_else else "")
        )

    is_pem = b"-----BEGIN" in data
    if is_pem and b"PRIVATE KEY-----" not in data:
        raise fail(
            f"{source} is not a PEM private key (no PRIVATE KEY block)",
            "give the key file",
        )
    loader = (
        serialization.load_pem_private_key
        if is_pem
        else serialization.load_der_private_key
    )
    try:
        key = loader(
            data,
            password=_passphrase_bytes(passphrase),
            unsafe_skip_rsa_key_validation=not validate,
        )
    except TypeError as exc:
        if "not encrypted" in str(exc):
            raise fail(
                f"{source} is not encrypted, but a passphrase was given",
                "drop the passphrase",
            ) from None
        raise fail(f"{source} is encrypted", "give its passphrase") from None
    except ValueError:
        if (
            is_pem
            and (b"ENCRYPTED" in data or b"Proc-Type: 4,ENCRYPTED" in data)
            and passphrase
        ):
            raise fail(
                f"cannot decrypt {source}: wrong passphrase",
                "give the passphrase the key was written with",
            ) from None
        # cryptography's text here names parser internals, not what is wrong with the file.
        raise fail(
            f"{source} is not a valid private key (truncated, damaged or an unknown format)",
            "give a complete PEM or DER private key file",
        ) from None
    except Exception as exc:
        raise fail(
            f"{source} holds a key this library cannot read ({_reason(exc)})",
            "use an RSA or ECDSA key",
        ) from None
    if not isinstance(
        key,
        (
            rsa.RSAPrivateKey,
            ec.EllipticCurvePrivateKey,
            ed25519.Ed25519PrivateKey,
            ed448.Ed448PrivateKey,
        ),
    ):
        raise fail(
            f"{source} holds an unsupported key type ({type(key).__name__})",
            "use RSA or ECDSA",
        )
    return key


# SHA-256 of the PKCS#8 DER of each RSA key this process made or checked: the check costs as
# much as making the key, and a batch hands the keys it just made straight to the export step.
_CHECKED_RSA_KEYS: set[bytes] = set()


def _remember_checked(der: bytes) -> None:
    _CHECKED_RSA_KEYS.add(hashlib.sha256(der).digest())


def check_key(key: PrivateKeyTypes, *, source: str) -> None:
    """Run the RSA consistency check that load_private_key(validate=False) skipped."""
    if not isinstance(key, rsa.RSAPrivateKey):
        return
    der = private_key_der(key)
    if hashlib.sha256(der).digest() in _CHECKED_RSA_KEYS:
        return
    try:
        serialization.load_der_private_key(der, None)
    except ValueError:
        raise CertificateError(
            f"{source} holds an inconsistent RSA key; make a new key"
        ) from None
    _remember_checked(der)


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text.rstrip(".")


_KEY_BLOCK = re.compile(
    rb"-----BEGIN ((?:ENCRYPTED |RSA |EC )?PRIVATE KEY)-----.+?-----END \1-----",
    re.DOTALL,
)


def private_key_block(data: bytes) -> bytes | None:
    """The first PEM private key block of DATA (a combined key and certificate file), if any."""
    found = _KEY_BLOCK.search(data)
    return found.group(0) + b"\n" if found else None


CERTIFICATE_REMEDY = "give a complete PEM or DER certificate file"


def load_certificates(
    data: bytes, *, source: str, remedy: str = CERTIFICATE_REMEDY
) -> list[x509.Certificate]:
    """All certificates of a PEM bundle (or one DER certificate), in file order.

    REMEDY ends the error message, so callers with another way out (force: true) say that instead.
    """
    if b"-----BEGIN" in data:
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise CertificateError(f"{source} has no CERTIFICATE block; {remedy}")
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError:
            # cryptography's text names ASN.1 parser internals that tell a user nothing.
            raise CertificateError(
                f"{source} is not a valid PEM/DER certificate (truncated or damaged); {remedy}"
            ) from None
        return certs
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise CertificateError(
            f"{source} is not a valid PEM/DER certificate (truncated or damaged); {remedy}"
        ) from None


def load_certificate(
    data: bytes, *, source: str, remedy: str = CERTIFICATE_REMEDY
) -> x509.Certificate:
    """The single certificate in DATA."""
    certs = load_certificates(data, source=source, remedy=remedy)
    if len(certs) != 1:
        raise CertificateError(
            f"{source} holds {len(certs)} certificates where one is expected; give a file with one certificate"
        )
    return certs[0]


# Parsing options --------------------------------------------------------------------------


def build_subject(subject: dict[str, t.Any] | None) -> x509.Name:
    """X.509 name from the subject option, validating each field."""
    attributes = []
    for field, oid in SUBJECT_FIELDS.items():
        value = (subject or {}).get(field)
        if value is None or value == "":
            continue
        value = str(value)
        if field == "country_name" and (
            len(value) != 2 or not value.isascii() or not value.isalpha()
        ):
            raise CertificateError(
                f"subject.country_name {value!r} must be a two-letter ISO 3166 code such as 'DE'"
            )
        if field == "country_name":
            value = value.upper()
        if len(value) > _SUBJECT_MAX[field]:
            raise CertificateError(
                f"subject.{field} is {len(value)} characters long; the limit is {_SUBJECT_MAX[field]}"
            )
        if field == "email_address" and not value.isascii():
            raise CertificateError(
                f"subject.email_address {value!r} must be ASCII; IDNA-encode the domain"
            )
        if field == "email_address" and not is_email_address(value):
            raise CertificateError(
                f"subject.email_address {value!r} is not valid; expected {_SAN_EXPECTED['email']}"
            )
        attributes.append(x509.NameAttribute(oid, value))
    unknown = sorted(set(subject or {}) - set(SUBJECT_FIELDS))
    if unknown:
        raise CertificateError(
            f"unknown subject field(s) {', '.join(unknown)}; use {', '.join(SUBJECT_FIELDS)}"
        )
    return x509.Name(attributes)


def _utf8_string_der(value: str) -> bytes:
    encoded = value.encode("utf-8")
    if len(encoded) < 0x80:
        return b"\x0c" + bytes([len(encoded)]) + encoded
    length = len(encoded).to_bytes((len(encoded).bit_length() + 7) // 8, "big")
    return b"\x0c" + bytes([0x80 | len(length)]) + length + encoded


# RFC 1034 3.5 preferred name syntax, with RFC 1123 2.1 allowing a leading digit.
_DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# RFC 5322 3.2.3 dot-atom: the local part of an addr-spec without quoted strings.
_DOT_ATOM = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
)
# RFC 3986 3.1 scheme and 3.2 authority; after it only characters a URI may hold (2.1 %HH, 2.2, 2.3).
_URI = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?:(?:[A-Za-z0-9._~!$&'()*+,;=:-]|%[0-9A-Fa-f]{2})*@)?"
    r"(?P<host>[A-Za-z0-9.-]+)(?::[0-9]{1,5})?"
    r"(?P<rest>[/?#](?:[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=-]|%[0-9A-Fa-f]{2})*)?"
)
_SAN_EXPECTED = {
    "email": "an e-mail address local@domain with a fully qualified domain (RFC 5322 addr-spec)",
    "upn": "a user principal name local@domain, for example robot01@example.com",
    "uri": "a URI with a scheme and a fully qualified host, for example https://rpa.example.com/robot01 (RFC 3986, RFC 5280 4.2.1.6)",
    "dns": "a fully qualified host name of letters, digits and hyphens between dots, for example robot01.example.com",
}


# A top-level domain is letters only (or an IDNA xn-- label); pkilint refuses names without one.
_TLD = re.compile(r"[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59}")
_IPV4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])"
)


def is_dns_name(value: str, *, fqdn: bool = True) -> bool:
    """True for a DNS name in preferred name syntax (no trailing dot, no wildcard).

    FQDN=True also wants two or more labels ending in a top-level domain, as pkilint does.
    """
    labels = value.split(".")
    if len(value) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        return False
    return not fqdn or (len(labels) > 1 and _TLD.fullmatch(labels[-1]) is not None)


def is_email_address(value: str) -> bool:
    """True for an RFC 5322 addr-spec of the shape local@domain (dot-atom local part, DNS domain)."""
    local, sep, domain = value.rpartition("@")
    return bool(sep) and bool(_DOT_ATOM.fullmatch(local)) and is_dns_name(domain)


def _is_upn(value: str) -> bool:
    # A UPN is a UTF8String, so the local part may be non-ASCII; it is never blank, nor holds @ or spaces.
    local, sep, domain = value.rpartition("@")
    return (
        bool(sep and local)
        and not any(c.isspace() or c == "@" for c in local)
        and is_dns_name(domain, fqdn=False)
    )


def _is_uri(value: str) -> bool:
    # RFC 5280 4.2.1.6 wants a fully qualified host in a URI with an authority; pkilint also refuses URIs
    # without one (urn:...), so only scheme://host... is accepted.
    found = _URI.fullmatch(value)
    if found is None:
        return False
    host = found.group("host")
    return is_dns_name(host) or _IPV4.fullmatch(host) is not None


_SAN_CHECKS: dict[str, t.Callable[[str], bool]] = {
    "email": is_email_address,
    "upn": _is_upn,
    "uri": _is_uri,
    "dns": is_dns_name,
}


def parse_san(entries: list[str] | None) -> list[x509.GeneralName]:
    """General names from prefixed entries: email:, upn:, uri:, dns:."""
    names: list[x509.GeneralName] = []
    for entry in entries or []:
        prefix, sep, value = str(entry).partition(":")
        prefix = prefix.strip().lower()
        if not sep or not prefix:
            raise CertificateError(
                f"subject_alt_names entry {entry!r} needs a prefix: email:, upn:, uri: or dns:"
            )
        if prefix not in _SAN_CHECKS:
            raise CertificateError(
                f"subject_alt_names entry {entry!r} has unknown prefix {prefix!r}; use email:, upn:, uri: or dns:"
            )
        if not value.strip():
            raise CertificateError(
                f"subject_alt_names entry {entry!r} has an empty value; give {_SAN_EXPECTED[prefix]} after {prefix}:"
            )
        if prefix in ("email", "dns", "uri") and not value.isascii():
            raise CertificateError(
                f"subject_alt_names entry {entry!r} must be ASCII; IDNA-encode host names and percent-encode URIs"
            )
        if not _SAN_CHECKS[prefix](value):
            raise CertificateError(
                f"subject_alt_names entry {entry!r} is not valid; expected {_SAN_EXPECTED[prefix]}"
            )
        try:
            if prefix == "email":
                names.append(x509.RFC822Name(value))
            elif prefix == "upn":
                names.append(
                    x509.OtherName(
                        x509.ObjectIdentifier(UPN_OID), _utf8_string_der(value)
                    )
                )
            elif prefix == "uri":
                names.append(x509.UniformResourceIdentifier(value))
            else:
                names.append(x509.DNSName(value))
        except (ValueError, TypeError):
            raise CertificateError(
                f"subject_alt_names entry {entry!r} is not valid; expected {_SAN_EXPECTED[prefix]}"
            ) from None
    return names


def parse_eku(names: list[str] | None) -> list[x509.ObjectIdentifier]:
    """EKU OIDs from names (client_auth or clientAuth, ...) or dotted OIDs, without duplicates."""
    oids: list[x509.ObjectIdentifier] = []
    for name in names or []:
        name = str(name).strip()
        if name in EKU_NAMES:
            oid = EKU_NAMES[name]
        elif all(part.isdigit() for part in name.split(".")) and name.count(".") >= 2:
            try:
                oid = x509.ObjectIdentifier(name)
            except ValueError:
                raise CertificateError(
                    f"extended key usage {name!r} is not a valid dotted OID"
                ) from None
        else:
            known = ", ".join(sorted(n for n in EKU_NAMES if "_" in n))
            raise CertificateError(
                f"unknown extended key usage {name!r}; use one of {known} or a dotted OID"
            )
        if oid not in oids:
            oids.append(oid)
    return oids


def effective_san(
    subject: x509.Name, san: list[x509.GeneralName]
) -> list[x509.GeneralName]:
    """SAN plus the subject's e-mail address, which RFC 5280 4.1.2.6 wants repeated as an rfc822Name."""
    names = list(san)
    for attribute in subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS):
        email = x509.RFC822Name(str(attribute.value))
        if email not in names:
            names.append(email)
    return names


def profile_ekus(
    purpose: str, extra: list[x509.ObjectIdentifier]
) -> list[x509.ObjectIdentifier]:
    """The EKU list a certificate of PURPOSE carries: the purpose's own EKU first, then EXTRA."""
    base = [PURPOSE_EKU[purpose]] if purpose in PURPOSE_EKU else []
    return base + [oid for oid in extra if oid not in base]


# Keys ---------------------------------------------------------------------------------------


def check_key_options(key_type: str, key_size: int, curve: str) -> None:
    if key_type not in KEY_TYPES:
        raise CertificateError(
            f"key_type {key_type!r} is not supported; use rsa or ecdsa"
        )
    if key_type == "rsa" and key_size not in RSA_KEY_SIZES:
        raise CertificateError(
            f"key_size {key_size} is not supported for RSA; use 2048, 3072 or 4096"
        )
    if key_type == "ecdsa" and curve not in CURVES:
        raise CertificateError(
            f"curve {curve!r} is not supported; use one of {', '.join(CURVES)}"
        )


def generate_private_key(
    key_type: str, key_size: int, curve: str
) -> CertificateIssuerPrivateKeyTypes:
    """A new RSA or ECDSA key."""
    check_key_options(key_type, key_size, curve)
    if key_type == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        _remember_checked(private_key_der(key))
        return key
    return ec.generate_private_key(CURVES[curve]())


def key_matches_options(
    key: PrivateKeyTypes, key_type: str, key_size: int, curve: str
) -> bool:
    """True when an existing KEY is what the key options ask for."""
    if key_type == "rsa":
        return isinstance(key, rsa.RSAPrivateKey) and key.key_size == key_size
    return isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == curve


def serialize_private_key(key: PrivateKeyTypes, passphrase: str | None) -> bytes:
    """PKCS#8 PEM, encrypted with the best available scheme when PASSPHRASE is set."""
    encryption: serialization.KeySerializationEncryption
    if passphrase:
        encryption = serialization.BestAvailableEncryption(passphrase.encode("utf-8"))
    else:
        encryption = serialization.NoEncryption()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def cert_der(cert: x509.Certificate) -> bytes:
    """DER of CERT."""
    return cert.public_bytes(serialization.Encoding.DER)


def cert_pem(cert: x509.Certificate) -> bytes:
    """PEM of CERT (base64 wrapped at 64 columns)."""
    return cert.public_bytes(serialization.Encoding.PEM)


def _signature_hash(
    key: CertificateIssuerPrivateKeyTypes,
) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.key_size >= 521:
            return hashes.SHA512()
        if key.curve.key_size >= 384:
            return hashes.SHA384()
        return hashes.SHA256()
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return None
    return hashes.SHA256()


# Building certificates ----------------------------------------------------------------------


def key_usage_for(purpose: str, public_key: PublicKeyTypes) -> x509.KeyUsage:
    """Key usage of the profile: CAs sign certificates and CRLs, leaves sign; RSA client keys also encipher for TLS."""
    is_rsa = isinstance(public_key, rsa.RSAPublicKey)
    return x509.KeyUsage(
        digital_signature=purpose != "ca",
        content_commitment=False,
        key_encipherment=purpose == "client_auth" and is_rsa,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=purpose == "ca",
        crl_sign=purpose == "ca",
        encipher_only=False,
        decipher_only=False,
    )


def build_certificate(
    *,
    purpose: str,
    subject: x509.Name,
    san: list[x509.GeneralName],
    extra_ekus: list[x509.ObjectIdentifier],
    public_key: CertificatePublicKeyTypes,
    valid_days: int,
    issuer_cert: x509.Certificate | None,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    now: datetime.datetime | None = None,
) -> x509.Certificate:
    """Build and sign a certificate of PURPOSE; self-signed when ISSUER_CERT is None."""
    if purpose not in PURPOSES:
        raise CertificateError(
            f"purpose {purpose!r} is not supported; use one of {', '.join(PURPOSES)}"
        )
    if valid_days < 1:
        raise CertificateError(f"valid_days must be 1 or more, got {valid_days}")
    san = effective_san(subject, san)
    if not len(subject) and not san:
        raise CertificateError(
            "the certificate needs a subject or at least one subject_alt_names entry"
        )
    if purpose == "ca" and not len(subject):
        raise CertificateError(
            "a CA certificate needs a subject (at least subject.common_name)"
        )
    moment = (now or datetime.datetime.now(datetime.UTC)).replace(microsecond=0)
    not_before = moment - BACKDATE
    not_after = moment + datetime.timedelta(days=valid_days)
    if issuer_cert is not None and not_after > issuer_cert.not_valid_after_utc:
        not_after = issuer_cert.not_valid_after_utc

    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert is not None else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.BasicConstraints(ca=purpose == "ca", path_length=None), critical=True
        )
        .add_extension(key_usage_for(purpose, public_key), critical=True)
        .add_extension(ski, critical=False)
    )
    if issuer_cert is not None:
        issuer_ski = _extension(issuer_cert, x509.SubjectKeyIdentifier)
        if issuer_ski is not None:
            aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                issuer_ski
            )
        else:
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(
                t.cast(t.Any, issuer_cert.public_key())
            )
        builder = builder.add_extension(aki, critical=False)
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
            critical=False,
        )
    ekus = profile_ekus(purpose, extra_ekus)
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    if san:
        # RFC 5280 4.2.1.6: the SAN is critical when the subject is empty.
        builder = builder.add_extension(
            x509.SubjectAlternativeName(san), critical=not len(subject)
        )
    return builder.sign(issuer_key, _signature_hash(issuer_key))


def certificate_differences(
    cert: x509.Certificate,
    *,
    purpose: str,
    subject: x509.Name,
    san: list[x509.GeneralName],
    extra_ekus: list[x509.ObjectIdentifier],
    valid_days: int,
    issuer_cert: x509.Certificate | None,
) -> list[str]:
    """Why CERT no longer matches the options (empty when it does)."""
    reasons: list[str] = []
    if cert.subject != subject:
        reasons.append("subject differs")
    current_san = _extension(cert, x509.SubjectAlternativeName)
    if sorted(map(repr, current_san or [])) != sorted(
        map(repr, effective_san(subject, san))
    ):
        reasons.append("subject_alt_names differ")
    current_eku = _extension(cert, x509.ExtendedKeyUsage)
    if list(current_eku or []) != profile_ekus(purpose, extra_ekus):
        reasons.append("extended key usages differ")
    if is_ca(cert) != (purpose == "ca") or _extension(
        cert, x509.KeyUsage
    ) != key_usage_for(purpose, cert.public_key()):
        reasons.append("purpose differs")
    span = cert.not_valid_after_utc - cert.not_valid_before_utc - BACKDATE
    clamped = (
        issuer_cert is not None
        and cert.not_valid_after_utc == issuer_cert.not_valid_after_utc
    )
    if round(span.total_seconds() / 86400) != valid_days and not clamped:
        reasons.append("valid_days differs")
    if issuer_cert is None:
        if not is_self_signed(cert):
            reasons.append("certificate is not self-signed but no issuer is given")
    elif not is_issued_by(cert, issuer_cert):
        reasons.append("issuer no longer verifies the certificate")
    return reasons


# Validation ---------------------------------------------------------------------------------


def check_issuer(
    issuer_cert: x509.Certificate,
    issuer_key: PrivateKeyTypes | None,
    *,
    source: str,
    now: datetime.datetime | None = None,
) -> None:
    """Fail unless ISSUER_CERT is a usable, unexpired CA whose key is ISSUER_KEY (when given)."""
    if not is_ca(issuer_cert):
        raise CertificateError(
            f"issuer certificate {source} is not a CA (no basicConstraints CA:TRUE); issue it with purpose: ca"
        )
    usage = _extension(issuer_cert, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        raise CertificateError(
            f"issuer certificate {source} may not sign certificates (keyCertSign missing from key usage); issue it with purpose: ca"
        )
    check_not_expired(issuer_cert, what=f"issuer certificate {source}", now=now)
    if issuer_key is None:
        return
    if not public_key_matches(issuer_key, issuer_cert):
        raise CertificateError(
            f"issuer private key does not match issuer certificate {source}; give the key of that certificate"
        )
    if not isinstance(
        issuer_key,
        (
            rsa.RSAPrivateKey,
            ec.EllipticCurvePrivateKey,
            ed25519.Ed25519PrivateKey,
            ed448.Ed448PrivateKey,
        ),
    ):
        raise CertificateError(
            f"issuer key type {type(issuer_key).__name__} cannot sign certificates; use an RSA or ECDSA CA key"
        )


def check_not_expired(
    cert: x509.Certificate, *, what: str, now: datetime.datetime | None = None
) -> None:
    moment = now or datetime.datetime.now(datetime.UTC)
    if cert.not_valid_after_utc <= moment:
        raise CertificateError(
            f"{what} expired on {_iso(cert.not_valid_after_utc)}; renew it first"
        )
    if cert.not_valid_before_utc > moment:
        raise CertificateError(
            f"{what} is not valid before {_iso(cert.not_valid_before_utc)}; check the clock"
        )


def expires_within(
    cert: x509.Certificate, days: int, now: datetime.datetime | None = None
) -> bool:
    moment = now or datetime.datetime.now(datetime.UTC)
    return cert.not_valid_after_utc - moment <= datetime.timedelta(days=days)


def verify_chain(
    leaf: x509.Certificate,
    chain: list[x509.Certificate],
    *,
    now: datetime.datetime | None = None,
) -> None:
    """Fail unless LEAF, then each CHAIN certificate, is signed by the next one and none has expired."""
    names = ["the certificate"] + [
        f"chain certificate {i + 1} ({c.subject.rfc4514_string()})"
        for i, c in enumerate(chain)
    ]
    everything = [leaf, *chain]
    for index, cert in enumerate(everything):
        check_not_expired(
            cert,
            what=names[index]
            + ("" if index else f" {cert.subject.rfc4514_string()!r}"),
            now=now,
        )
        if index + 1 < len(everything):
            parent = everything[index + 1]
            if not is_issued_by(cert, parent):
                raise CertificateError(
                    f"{names[index + 1]} did not issue {names[index]}; give only the chain of this certificate"
                )
            if not is_ca(parent):
                raise CertificateError(
                    f"{names[index + 1]} is not a CA certificate; a chain holds CA certificates only"
                )


__all__ = (
    "BACKDATE",
    "CRYPTOGRAPHY_IMPORT_ERROR",
    "CURVES",
    "EKU_NAMES",
    "HAS_CRYPTOGRAPHY",
    "KEY_TYPES",
    "MINIMUM_CRYPTOGRAPHY_VERSION",
    "MIN_RSA_KEY_SIZE",
    "RSA_KEY_SIZES",
    "CERTIFICATE_REMEDY",
    "PURPOSES",
    "PURPOSE_EKU",
    "require_cryptography",
    "SUBJECT_FIELDS",
    "SUBJECT_FIELD_NAMES",
    "UPN_OID",
    "build_certificate",
    "build_subject",
    "cert_allows_purpose",
    "cert_der",
    "cert_pem",
    "cert_summary",
    "certificate_differences",
    "check_issuer",
    "check_key",
    "check_key_options",
    "check_not_expired",
    "effective_san",
    "expires_within",
    "find_leaf",
    "generate_private_key",
    "is_ca",
    "is_dns_name",
    "is_email_address",
    "is_issued_by",
    "is_self_signed",
    "key_matches_options",
    "key_usage_for",
    "load_certificate",
    "load_certificates",
    "load_private_key",
    "order_chain",
    "parse_eku",
    "parse_san",
    "private_key_block",
    "private_key_der",
    "public_key_der",
    "profile_ekus",
    "public_key_matches",
    "serialize_private_key",
    "split_chain",
    "sha256_fingerprint",
    "thumbprint",
)
