"""Real certificates and PKCS#12 files for the Windows import tests, made with cryptography."""

from __future__ import annotations

import datetime
import typing as t
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.UTC)
PASSPHRASE = "robot-p12-Secret!"


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Robots"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _cert(
    subject: x509.Name,
    key: t.Any,
    issuer: x509.Name,
    issuer_key: t.Any,
    *,
    ca: bool,
    ekus: list[x509.ObjectIdentifier] | None,
    not_after: datetime.datetime | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=2))
        .not_valid_after(not_after or NOW + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        usage = x509.KeyUsage(
            False, False, False, False, False, True, True, False, False
        )
    else:
        usage = x509.KeyUsage(
            True, False, False, False, False, False, False, False, False
        )
    builder = builder.add_extension(usage, critical=True)
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class Pki:
    root_key: rsa.RSAPrivateKey
    root: x509.Certificate
    inter_key: rsa.RSAPrivateKey
    inter: x509.Certificate

    def leaf(
        self,
        cn: str = "robot-01",
        *,
        ekus: list[x509.ObjectIdentifier] | None = None,
        key: t.Any = None,
        not_after: datetime.datetime | None = None,
    ) -> tuple[t.Any, x509.Certificate]:
        key = key or _rsa()
        ekus = [ExtendedKeyUsageOID.CLIENT_AUTH] if ekus is None else ekus
        cert = _cert(
            _name(cn),
            key,
            self.inter.subject,
            self.inter_key,
            ca=False,
            ekus=ekus,
            not_after=not_after,
        )
        return key, cert


def make_pki() -> Pki:
    root_key = _rsa()
    root = _cert(
        _name("Robot Root CA"),
        root_key,
        _name("Robot Root CA"),
        root_key,
        ca=True,
        ekus=None,
    )
    inter_key = _rsa()
    inter = _cert(
        _name("Robot Issuing CA"), inter_key, root.subject, root_key, ca=True, ekus=None
    )
    return Pki(root_key, root, inter_key, inter)


def self_signed(
    cn: str = "robot-self", ekus: list[x509.ObjectIdentifier] | None = None
) -> tuple[t.Any, x509.Certificate]:
    key = _rsa()
    cert = _cert(
        _name(cn),
        key,
        _name(cn),
        key,
        ca=False,
        ekus=ekus or [ExtendedKeyUsageOID.CODE_SIGNING],
    )
    return key, cert


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def p12(
    key: t.Any,
    cert: x509.Certificate | None,
    cas: list[x509.Certificate] | None = None,
    *,
    profile: str = "legacy",
    name: bytes | None = b"robot-01 client",
    passphrase: str = PASSPHRASE,
) -> bytes:
    builder = serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(2048)
    if profile == "modern":
        builder = builder.key_cert_algorithm(
            pkcs12.PBES.PBESv2SHA256AndAES256CBC
        ).hmac_hash(hashes.SHA256())
    else:
        builder = builder.key_cert_algorithm(
            pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC
        ).hmac_hash(hashes.SHA1())
    return pkcs12.serialize_key_and_certificates(
        name, key, cert, cas, builder.build(passphrase.encode())
    )


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)
