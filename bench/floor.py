"""The floor of the benchmark: the same work as the role, in plain `cryptography`, in one process.

For every robot: a client-authentication and a code-signing identity, each a new key, a
certificate signed by the robot CA, a PEM chain and a PKCS#12 with the PKCS#12 settings of the
collection's legacy profile (3DES bags, SHA-1 MAC, 2048 KDF rounds; REFERENCE.md section 3).
Files are written as the collection writes them: temp file, fsync, rename; keys and PKCS#12 0600
in 0700 folders. `--check` is the unchanged re-run: read every file back and prove it is still
right (key matches, not due for renewal, PKCS#12 opens), writing nothing. `--procs 2` spreads the
robots over two processes, the floor with both cores in use.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import os
import sys
import tempfile
import time
import typing as t

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PURPOSES = (
    ("client", ExtendedKeyUsageOID.CLIENT_AUTH, "", "client authentication"),
    ("codesign", ExtendedKeyUsageOID.CODE_SIGNING, " code signing", "code signing"),
)
KDF_ROUNDS = 2048
RENEW_BEFORE = datetime.timedelta(days=30)


def new_key(key_type: str) -> t.Any:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def write_atomic(path: str, data: bytes, mode: int) -> None:
    folder = os.path.dirname(path)
    handle, temp = tempfile.mkstemp(
        dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp"
    )
    with os.fdopen(handle, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    os.chmod(temp, mode)
    os.replace(temp, path)


def key_usage(purpose: str, key: t.Any) -> x509.KeyUsage:
    encipher = purpose == "client" and isinstance(key, rsa.RSAPrivateKey)
    ca = purpose == "ca"
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=encipher,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def build(
    name: str,
    purpose: str,
    eku: x509.ObjectIdentifier | None,
    key: t.Any,
    issuer: tuple[x509.Certificate, t.Any] | None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(
            now + datetime.timedelta(days=3650 if purpose == "ca" else 365)
        )
        .add_extension(
            x509.BasicConstraints(ca=purpose == "ca", path_length=None), critical=True
        )
        .add_extension(key_usage(purpose, key), critical=True)
        .add_extension(ski, critical=False)
    )
    if issuer_cert is not None:
        issuer_ski = issuer_cert.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski),
            critical=False,
        )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def pem_key(key: t.Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_ca(out: str, key_type: str) -> None:
    folder = os.path.join(out, "ca")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    key = new_key(key_type)
    cert = build("Robot CA", "ca", None, key, None)
    write_atomic(os.path.join(folder, "robot-ca.key"), pem_key(key), 0o600)
    write_atomic(
        os.path.join(folder, "robot-ca.crt"),
        cert.public_bytes(serialization.Encoding.PEM),
        0o644,
    )


def load_ca(out: str) -> tuple[x509.Certificate, t.Any]:
    folder = os.path.join(out, "ca")
    with open(os.path.join(folder, "robot-ca.crt"), "rb") as handle:
        cert = x509.load_pem_x509_certificate(handle.read())
    with open(os.path.join(folder, "robot-ca.key"), "rb") as handle:
        key = serialization.load_pem_private_key(handle.read(), None)
    return cert, key


def issue_robot(
    out: str,
    robot: str,
    key_type: str,
    passphrase: bytes,
    ca: tuple[x509.Certificate, t.Any],
) -> None:
    folder = os.path.join(out, robot)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(KDF_ROUNDS)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())
        .build(passphrase)
    )
    ca_pem = ca[0].public_bytes(serialization.Encoding.PEM)
    for stem, eku, cn_suffix, friendly in PURPOSES:
        key = new_key(key_type)
        cert = build(robot + cn_suffix, stem, eku, key, ca)
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        p12 = pkcs12.serialize_key_and_certificates(
            f"{robot} {friendly}".encode(), key, cert, [ca[0]], encryption
        )
        write_atomic(os.path.join(folder, f"{stem}.key"), pem_key(key), 0o600)
        write_atomic(os.path.join(folder, f"{stem}.crt"), cert_pem, 0o644)
        write_atomic(os.path.join(folder, f"{stem}.pem"), cert_pem + ca_pem, 0o644)
        write_atomic(os.path.join(folder, f"{stem}.p12"), p12, 0o600)


def check_robot(
    out: str, robot: str, passphrase: bytes, ca: tuple[x509.Certificate, t.Any]
) -> None:
    folder = os.path.join(out, robot)
    now = datetime.datetime.now(datetime.UTC)
    for stem, _eku, _cn, _friendly in PURPOSES:
        # The key is checked against the certificate below; RSA's slow consistency check adds nothing here.
        with open(os.path.join(folder, f"{stem}.key"), "rb") as handle:
            key = serialization.load_pem_private_key(
                handle.read(), None, unsafe_skip_rsa_key_validation=True
            )
        with open(os.path.join(folder, f"{stem}.crt"), "rb") as handle:
            cert = x509.load_pem_x509_certificate(handle.read())
        with open(os.path.join(folder, f"{stem}.p12"), "rb") as handle:
            p12 = pkcs12.load_pkcs12(handle.read(), passphrase)
        cert.verify_directly_issued_by(ca[0])
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        same_key = key.public_key().public_bytes(
            serialization.Encoding.DER, spki
        ) == cert.public_key().public_bytes(serialization.Encoding.DER, spki)
        if (
            not same_key
            or p12.cert is None
            or p12.cert.certificate != cert
            or cert.not_valid_after_utc - now < RENEW_BEFORE
        ):
            raise SystemExit(f"{folder}/{stem}: changed since the first run")


def _work(args: tuple[str, list[str], str, bytes, bool]) -> int:
    out, robots, key_type, passphrase, check = args
    ca = load_ca(out)
    for robot in robots:
        if check:
            check_robot(out, robot, passphrase, ca)
        else:
            issue_robot(out, robot, key_type, passphrase, ca)
    return len(robots)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("-n", type=int, required=True)
    parser.add_argument("--key-type", choices=("rsa", "ecdsa"), default="rsa")
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument(
        "--check",
        action="store_true",
        help="the unchanged re-run: verify, write nothing",
    )
    args = parser.parse_args()
    passphrase = os.environ.get("BENCH_PKCS12_PASSPHRASE", "bench-pkcs12").encode()
    robots = [f"robot-{i:04d}" for i in range(1, args.n + 1)]

    started = time.perf_counter()
    if not args.check and not os.path.exists(
        os.path.join(args.out, "ca", "robot-ca.crt")
    ):
        make_ca(args.out, args.key_type)
    slices = [
        (args.out, robots[i :: args.procs], args.key_type, passphrase, args.check)
        for i in range(args.procs)
    ]
    if args.procs == 1:
        done = _work(slices[0])
    else:
        with multiprocessing.get_context("fork").Pool(args.procs) as pool:
            done = sum(pool.map(_work, slices))
    print(f"{done} robots in {time.perf_counter() - started:.3f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
