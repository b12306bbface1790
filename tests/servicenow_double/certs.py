"""X.509 work of the ServiceNow test double: its throwaway server PKI, reading attached PEMs
and deciding whether a client certificate chains to a registered CA.

Test code only. The chain check is deliberately small (issuer name match, signature, validity
of every link); it is not a full RFC 5280 path validation.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PEM_CERT_BEGIN = b"-----BEGIN CERTIFICATE-----"
MAX_CHAIN_DEPTH = 6


class PemError(ValueError):
    """An attachment is not a usable certificate PEM (the message says why)."""


@dataclass(frozen=True)
class ServerPki:
    ca_path: Path
    cert_path: Path
    key_path: Path


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def ensure_server_pki(state_dir: Path) -> ServerPki:
    """Create (once) a throwaway CA and a server certificate for 127.0.0.1 and localhost."""
    pki = ServerPki(
        state_dir / "server-ca.pem", state_dir / "server.pem", state_dir / "server.key"
    )
    if pki.ca_path.exists() and pki.cert_path.exists() and pki.key_path.exists():
        return pki

    start = _now() - datetime.timedelta(minutes=5)
    end = start + datetime.timedelta(days=3650)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "ServiceNow test double CA")]
    )
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    state_dir.mkdir(parents=True, exist_ok=True)
    _write_private(
        pki.key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    pki.cert_path.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    pki.ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return pki


def parse_pem_bundle(data: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM attachment; refuses keys, junk and empty files."""
    if b"PRIVATE KEY-----" in data:
        raise PemError(
            "the attachment contains a private key; attach the certificate only"
        )
    if PEM_CERT_BEGIN not in data:
        raise PemError("the attachment holds no PEM certificate")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise PemError(f"the attachment is not a valid PEM certificate: {exc}") from exc
    return certs


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _stamp(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def describe(cert: x509.Certificate) -> dict[str, str]:
    """The fields the instance extracts from an attached certificate."""
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "valid_from": _stamp(cert.not_valid_before_utc),
        "valid_to": _stamp(cert.not_valid_after_utc),
    }


def _time_problem(cert: x509.Certificate, now: datetime.datetime) -> str | None:
    if now > cert.not_valid_after_utc:
        return "certificate expired"
    if now < cert.not_valid_before_utc:
        return "certificate not yet valid"
    return None


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def chain_problem(
    leaf: x509.Certificate,
    published: list[x509.Certificate],
    pending: list[x509.Certificate],
    now: datetime.datetime | None = None,
) -> str | None:
    """None when LEAF is valid and chains to a PUBLISHED certificate, else the reason.

    PUBLISHED are the certificates of active CA records whose publish status is exists;
    PENDING those of active CA records not yet published, only used to word the reason.
    Any registered certificate may end the chain (a registered intermediate is trusted).
    """
    now = now or _now()
    problem = _time_problem(leaf, now)
    if problem:
        return problem
    trusted = {fingerprint(c) for c in published}
    current = leaf
    for _depth in range(MAX_CHAIN_DEPTH):
        if fingerprint(current) in trusted:
            return None
        if current.issuer == current.subject and _signed_by(current, current):
            if fingerprint(current) in {fingerprint(c) for c in pending}:
                return "issuer CA not published yet"
            if current is leaf:
                return "self-signed certificate not registered as a CA"
            return "issuer not a registered CA"
        issuer = next(
            (
                c
                for c in published
                if c.subject == current.issuer and _signed_by(current, c)
            ),
            None,
        )
        if issuer is None:
            if any(
                c.subject == current.issuer and _signed_by(current, c) for c in pending
            ):
                return "issuer CA not published yet"
            return "issuer not a registered CA"
        if _time_problem(issuer, now):
            return "issuer CA expired"
        current = issuer
    return "certificate chain too long"


__all__ = (
    "PemError",
    "ServerPki",
    "chain_problem",
    "describe",
    "ensure_server_pki",
    "fingerprint",
    "parse_pem_bundle",
)
