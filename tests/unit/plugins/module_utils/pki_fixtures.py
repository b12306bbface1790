"""Test helpers: a small PKI (CA, client and code-signing leaves) built with the collection's own builder."""

from __future__ import annotations

import dataclasses
import datetime
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
)

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import _pki

VENV_BIN = Path(sys.executable).parent


@dataclasses.dataclass
class Identity:
    key: CertificateIssuerPrivateKeyTypes
    cert: x509.Certificate


def make_identity(
    purpose: str,
    common_name: str,
    *,
    issuer: Identity | None = None,
    key_type: str = "rsa",
    curve: str = "secp256r1",
    valid_days: int = 365,
    san: list[str] | None = None,
    subject: dict[str, str] | None = None,
    now: datetime.datetime | None = None,
) -> Identity:
    key = _pki.generate_private_key(key_type, 2048, curve)
    fields = {
        "common_name": common_name,
        "organization_name": "Example Robots",
        "country_name": "DE",
    }
    fields.update(subject or {})
    cert = _pki.build_certificate(
        purpose=purpose,
        subject=_pki.build_subject(fields),
        san=_pki.parse_san(san),
        extra_ekus=[],
        public_key=key.public_key(),
        valid_days=valid_days,
        issuer_cert=issuer.cert if issuer else None,
        issuer_key=issuer.key if issuer else key,
        now=now,
    )
    return Identity(key, cert)


def write_pem(path: Path, *certs: x509.Certificate) -> Path:
    path.write_bytes(b"".join(_pki.cert_pem(c) for c in certs))
    return path


def pkilint(tool: str, *files: Path) -> subprocess.CompletedProcess[str]:
    """Run a pkilint command line tool at WARNING threshold; its output lists every finding."""
    return subprocess.run(
        [str(VENV_BIN / tool), "lint", "-s", "WARNING", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )


def run(*command: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command), capture_output=True, text=True, input=stdin, check=False
    )


def age_certificate(
    path: Path,
    issuer_cert_path: Path,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    days: int,
) -> x509.Certificate:
    """Re-sign the certificate at PATH as if it had been issued DAYS ago, keeping everything else.

    The span stays the same, so the only thing a renewal check can find is the nearer end date.
    """
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    issuer = x509.load_pem_x509_certificate(issuer_cert_path.read_bytes())
    shift = datetime.timedelta(days=days)
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(issuer.subject)
        .public_key(cert.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(cert.not_valid_before_utc - shift)
        .not_valid_after(cert.not_valid_after_utc - shift)
    )
    for extension in cert.extensions:
        builder = builder.add_extension(extension.value, critical=extension.critical)
    aged = builder.sign(issuer_key, hashes.SHA256())
    path.write_bytes(_pki.cert_pem(aged))
    return aged
