"""Test helpers: a small PKI (CA, client and code-signing leaves) built with the collection's own builder."""

from __future__ import annotations

import dataclasses
import datetime
import subprocess
import sys
from pathlib import Path

from cryptography import x509
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
