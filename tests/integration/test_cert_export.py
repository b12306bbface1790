"""cert_export in real ansible-playbook runs, checked with openssl, keytool, osslsigncode and a real mTLS handshake."""

from __future__ import annotations

import base64
import datetime
import os
import socket
import ssl
import threading
import typing as t
from pathlib import Path

import cryptography_vectors
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import _pki
from tests.conftest import run_playbook
from tests.helpers import sh, snapshot

PLAYBOOKS = Path(__file__).parent / "playbooks" / "certs"
VECTORS = Path(os.path.dirname(cryptography_vectors.__file__)) / "pkcs12"
PFX_PASSPHRASE = "robot-pfx-passphrase"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, t.Any]:
    work = tmp_path_factory.mktemp("export")
    out = work / "pki"
    generated = run_playbook(
        PLAYBOOKS / "generate.yml", tmp_path=work, extra_vars={"out_dir": str(out)}
    )
    assert generated.rc == 0, generated.stdout + generated.stderr
    variables = {
        "out_dir": str(out),
        "byo_src": str(VECTORS / "name-unicode-pwd.p12"),
        "byo_src_passphrase": "password",
    }
    run = run_playbook(
        PLAYBOOKS / "export.yml", tmp_path=work, extra_vars=variables, diff=True
    )
    assert run.rc == 0, run.stdout + run.stderr
    return out, run


def test_first_run_writes_every_file(exported: tuple[Path, t.Any]) -> None:
    out, run = exported

    assert len(run.changed_tasks()) == 4
    assert PFX_PASSPHRASE not in run.stdout + run.stderr
    assert "PRIVATE KEY" not in run.stdout  # the --diff output carries metadata only
    first = run.task("Export the RSA client certificate for a modern Windows build")
    assert first["pkcs12_profile"] == "modern"
    assert (
        run.task("Export the ECDSA client certificate for any Windows build")[
            "pkcs12_profile"
        ]
        == "legacy"
    )
    ca = _pki.load_certificate((out / "ca/ca.pem").read_bytes(), source="ca")
    assert first["chain_thumbprints"] == [_pki.thumbprint(ca)]
    for p12 in (
        "robot01/client.p12",
        "robot02/client.p12",
        "signing/signing.p12",
        "byo/robot.p12",
    ):
        assert (out / p12).stat().st_mode & 0o777 == 0o600, p12


def test_pem_chain_is_leaf_then_root_wrapped_at_64(
    exported: tuple[Path, t.Any],
) -> None:
    out, _run = exported
    text = (out / "robot01/client-chain.pem").read_text()

    certs = _pki.load_certificates(text.encode(), source="chain")
    assert [c.subject.rfc4514_string() for c in certs] == [
        "1.2.840.113549.1.9.1=robot01@example.com,CN=robot01,OU=RPA,O=Example Robots,C=DE",
        "CN=Robot CA,O=Example Robots,C=DE",
    ]
    assert "PRIVATE KEY" not in text
    body = [line for line in text.splitlines() if not line.startswith("-----")]
    assert max(len(line) for line in body) == 64
    verify = sh(
        "openssl",
        "verify",
        "-purpose",
        "sslclient",
        "-CAfile",
        str(out / "ca/ca.pem"),
        str(out / "robot01/client-chain.pem"),
    )
    assert verify.returncode == 0, verify.stderr


@pytest.mark.parametrize(
    ("p12", "expected", "absent"),
    [
        (
            "robot01/client.p12",
            [
                "MAC: sha256",
                "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC",
                "PRF hmacWithSHA256",
            ],
            "TripleDES",
        ),
        (
            "robot02/client.p12",
            [
                "MAC: sha1",
                "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC",
                "PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC",
            ],
            "AES",
        ),
        (
            "signing/signing.p12",
            ["MAC: sha1", "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC"],
            "AES",
        ),
        (
            "byo/robot.p12",
            ["MAC: sha256", "PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC"],
            "TripleDES",
        ),
    ],
)
def test_openssl_shows_profile(
    exported: tuple[Path, t.Any], p12: str, expected: list[str], absent: str
) -> None:
    out, _run = exported

    info = sh(
        "openssl",
        "pkcs12",
        "-info",
        "-noout",
        "-in",
        str(out / p12),
        "-passin",
        f"pass:{PFX_PASSPHRASE}",
    )

    assert info.returncode == 0, info.stderr
    for text in expected:
        assert text in info.stdout + info.stderr, text
    assert absent not in info.stdout + info.stderr


@pytest.mark.parametrize(
    "p12",
    [
        "robot01/client.p12",
        "robot02/client.p12",
        "signing/signing.p12",
        "byo/robot.p12",
    ],
)
def test_keytool_opens_pkcs12(exported: tuple[Path, t.Any], p12: str) -> None:
    out, _run = exported

    listing = sh(
        "keytool",
        "-list",
        "-storetype",
        "PKCS12",
        "-keystore",
        str(out / p12),
        "-storepass",
        PFX_PASSPHRASE,
    )

    assert listing.returncode == 0, listing.stdout + listing.stderr
    assert "PrivateKeyEntry" in listing.stdout


def test_friendly_names(exported: tuple[Path, t.Any]) -> None:
    out, run = exported

    listing = sh(
        "keytool",
        "-list",
        "-storetype",
        "PKCS12",
        "-keystore",
        str(out / "signing/signing.p12"),
        "-storepass",
        PFX_PASSPHRASE,
    )
    robot01 = run.task("Export the RSA client certificate for a modern Windows build")

    # keytool lists PKCS#12 aliases (the friendly names) in lower case.
    assert "rpa package signing, " in listing.stdout.lower()
    assert robot01["friendly_name"] == f"robot01 ({robot01['thumbprint'][:8]})"
    assert (
        run.task("Re-package a bring-your-own PKCS#12 with the modern profile")[
            "friendly_name"
        ]
        == "☺"
    )


def _extract_pem(p12: Path, folder: Path) -> tuple[Path, Path]:
    """Key and certificate out of the PKCS#12 with openssl, independently of our reader."""
    cert, key = folder / "from-p12-cert.pem", folder / "from-p12-key.pem"
    got_cert = sh(
        "openssl",
        "pkcs12",
        "-in",
        str(p12),
        "-passin",
        f"pass:{PFX_PASSPHRASE}",
        "-clcerts",
        "-nokeys",
        "-out",
        str(cert),
    )
    got_key = sh(
        "openssl",
        "pkcs12",
        "-in",
        str(p12),
        "-passin",
        f"pass:{PFX_PASSPHRASE}",
        "-nocerts",
        "-nodes",
        "-out",
        str(key),
    )
    assert got_cert.returncode == 0 and got_key.returncode == 0, (
        got_cert.stderr + got_key.stderr
    )
    return cert, key


def _mtls_handshake(
    ca_pem: Path, client_cert: Path, client_key: Path, server_dir: Path
) -> tuple[str | None, str | None]:
    """Run a TLS server that requires a client certificate from the CA; return (client thumbprint seen, error)."""
    ca = _pki.load_certificate(ca_pem.read_bytes(), source="ca")
    ca_key = _pki.load_private_key(
        (ca_pem.parent / "ca.key").read_bytes(), "ca-secret-passphrase", source="ca key"
    )
    # The test server's own certificate is made with cryptography directly: it answers as
    # localhost, a single-label name that the collection refuses in robot certificates.
    server_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "instance.test")])
        )
        .issuer_name(ca.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    (server_dir / "server.pem").write_bytes(_pki.cert_pem(server_cert))
    (server_dir / "server.key").write_bytes(
        _pki.serialize_private_key(server_key, None)
    )

    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca_pem))
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.load_cert_chain(
        str(server_dir / "server.pem"), str(server_dir / "server.key")
    )
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: dict[str, t.Any] = {}

    def serve() -> None:
        conn, _addr = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                der = tls.getpeercert(binary_form=True)
                seen["thumbprint"] = (
                    _pki.thumbprint(_pki.load_certificate(der, source="peer"))
                    if der
                    else None
                )
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as exc:
            seen["error"] = str(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(ca_pem))
    client_ctx.load_cert_chain(str(client_cert), str(client_key))
    error = None
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client_ctx.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.recv(2)
    except (ssl.SSLError, OSError) as exc:
        error = str(exc)
    thread.join(10)
    listener.close()
    return seen.get("thumbprint"), error or seen.get("error")


@pytest.mark.parametrize("p12", ["robot01/client.p12", "robot02/client.p12"])
def test_mtls_server_accepts_client_pkcs12(
    exported: tuple[Path, t.Any], tmp_path: Path, p12: str
) -> None:
    out, _run = exported
    cert, key = _extract_pem(out / p12, tmp_path)

    thumbprint, error = _mtls_handshake(out / "ca/ca.pem", cert, key, tmp_path)

    assert error is None
    assert thumbprint == _pki.thumbprint(
        _pki.load_certificate(
            (out / p12).with_suffix(".pem").read_bytes(), source="leaf"
        )
    )


def test_mtls_server_refuses_code_signing_certificate(
    exported: tuple[Path, t.Any], tmp_path: Path
) -> None:
    out, _run = exported
    cert, key = _extract_pem(out / "signing/signing.p12", tmp_path)

    thumbprint, error = _mtls_handshake(out / "ca/ca.pem", cert, key, tmp_path)

    assert thumbprint is None
    assert error is not None


def test_osslsigncode_signs_and_verifies_powershell_script(
    exported: tuple[Path, t.Any], tmp_path: Path
) -> None:
    out, _run = exported
    script = tmp_path / "Invoke-RobotTask.ps1"
    script.write_bytes(b'Write-Output "robot task"\r\n')
    signed = tmp_path / "Invoke-RobotTask.signed.ps1"

    sign = sh(
        "osslsigncode",
        "sign",
        "-pkcs12",
        str(out / "signing/signing.p12"),
        "-pass",
        PFX_PASSPHRASE,
        "-in",
        str(script),
        "-out",
        str(signed),
    )
    verify = sh(
        "osslsigncode", "verify", "-CAfile", str(out / "ca/ca.pem"), "-in", str(signed)
    )

    assert sign.returncode == 0, sign.stdout + sign.stderr
    assert "# SIG # Begin signature block" in signed.read_text()
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "Signature verification: ok" in verify.stdout
    assert "Subject: /O=Example Robots/CN=RPA Package Signing" in verify.stdout


def test_second_run_changes_nothing(
    exported: tuple[Path, t.Any], playbook: t.Callable[..., t.Any]
) -> None:
    out, _first = exported
    before = snapshot(out)
    variables = {
        "out_dir": str(out),
        "byo_src": str(VECTORS / "name-unicode-pwd.p12"),
        "byo_src_passphrase": "password",
    }

    again = playbook(PLAYBOOKS / "export.yml", extra_vars=variables)

    assert again.rc == 0, again.stdout
    assert again.changed_tasks() == []
    assert snapshot(out) == before


def test_check_mode_writes_nothing(
    exported: tuple[Path, t.Any], tmp_path: Path, playbook: t.Callable[..., t.Any]
) -> None:
    out, _first = exported
    fresh = tmp_path / "copy"
    for name in (
        "ca/ca.pem",
        "robot01/client.pem",
        "robot01/client.key",
        "robot02/client.pem",
        "robot02/client.key",
        "signing/signing.pem",
        "signing/signing.key",
    ):
        (fresh / name).parent.mkdir(parents=True, exist_ok=True)
        (fresh / name).write_bytes((out / name).read_bytes())
    before = snapshot(fresh)

    run = playbook(
        PLAYBOOKS / "export.yml", extra_vars={"out_dir": str(fresh)}, check=True
    )

    assert run.rc == 0, run.stdout
    assert len(run.changed_tasks()) == 3
    assert snapshot(fresh) == before


def test_profile_change_rewrites_pkcs12(
    exported: tuple[Path, t.Any], tmp_path: Path, playbook: t.Callable[..., t.Any]
) -> None:
    out, _first = exported
    fresh = tmp_path / "copy"
    for name in (
        "ca/ca.pem",
        "robot01/client.pem",
        "robot01/client.key",
        "robot02/client.pem",
        "robot02/client.key",
        "signing/signing.pem",
        "signing/signing.key",
    ):
        (fresh / name).parent.mkdir(parents=True, exist_ok=True)
        (fresh / name).write_bytes((out / name).read_bytes())
    first = playbook(PLAYBOOKS / "export.yml", extra_vars={"out_dir": str(fresh)})
    assert first.rc == 0

    legacy = playbook(
        PLAYBOOKS / "export.yml",
        extra_vars={"out_dir": str(fresh), "modern_build": 14393},
    )

    result = legacy.task("Export the RSA client certificate for a modern Windows build")
    assert legacy.changed_tasks() == [
        "Export the RSA client certificate for a modern Windows build"
    ]
    assert result["reasons"] == ["encryption profile is modern, not legacy"]
    info = sh(
        "openssl",
        "pkcs12",
        "-info",
        "-noout",
        "-in",
        str(fresh / "robot01/client.p12"),
        "-passin",
        f"pass:{PFX_PASSPHRASE}",
    )
    assert "MAC: sha1" in info.stdout + info.stderr


def test_bad_input_fails_in_one_line(
    exported: tuple[Path, t.Any], playbook: t.Callable[..., t.Any]
) -> None:
    out, _run = exported
    (out / "robot01/client.p12.b64").write_bytes(
        base64.encodebytes((out / "robot01/client.p12").read_bytes())
    )
    good = (out / "robot01/client.pem").read_bytes()
    (out / "robot01/truncated.pem").write_bytes(
        good[:300] + b"\n-----END CERTIFICATE-----\n"
    )
    before = snapshot(out)

    run = playbook(
        PLAYBOOKS / "export_bad.yml",
        extra_vars={
            "out_dir": str(out),
            "trust_store": str(VECTORS / "java-truststore.p12"),
        },
    )

    expected = {
        "Open a PKCS#12 source with the wrong password": "wrong pkcs12 passphrase",
        "Give a PKCS#12 saved as base64 text": "is base64 text, not the binary PKCS#12 file; decode it first",
        "Give a PKCS#12 without a key": "holds no private key (a certificate-only or trust store file)",
        "Give a missing certificate file": "does not exist; check the path",
        "Write into a folder below a file": "is not a directory",
        "Give the key of another certificate": "does not match the certificate",
        "Ask for code signing with a client certificate": "is not valid for purpose code_signing",
        "Give a chain that did not issue the certificate": "did not issue the certificate",
        "Give a malformed PEM certificate": "is not a valid PEM/DER certificate (truncated or damaged)",
    }
    # rc 0: every task failed as its failed_when expects.
    assert run.rc == 0, run.stdout + run.stderr
    for task, message in expected.items():
        result = run.task(task)
        assert [r["status"] for r in run.results if r["task"] == task] == ["ok"], task
        assert message in result["msg"] and "\n" not in result["msg"], (
            task,
            result["msg"],
        )
        assert "Traceback" not in str(result.get("exception", "")), task
    assert "Traceback" not in run.stdout + run.stderr
    assert (
        "new-passphrase" not in run.stdout + run.stderr
        and "not-the-passphrase" not in run.stdout + run.stderr
    )
    assert snapshot(out) == before
    assert not (out / "bad").exists()


def test_check_mode_for_a_new_robot_predicts_the_export(
    exported: tuple[Path, t.Any], tmp_path: Path, playbook: t.Callable[..., t.Any]
) -> None:
    shared, _run = exported
    out = tmp_path / "pki"
    variables = {"out_dir": str(out), "ca_dir": str(shared / "ca")}

    checked = playbook(PLAYBOOKS / "new_robot.yml", extra_vars=variables, check=True)

    assert checked.rc == 0, checked.stdout + checked.stderr
    assert checked.changed_tasks() == [
        "Issue the new robot's client certificate",
        "Export the new robot's certificate",
    ]
    export = checked.task("Export the new robot's certificate")
    assert f"would export once {out}/robot09/client.pem exists" in export["reasons"]
    assert any(
        f"would export once {out}/robot09/client.pem exists" in w
        for w in export["warnings"]
    ), export
    assert "[WARNING]" in checked.stdout + checked.stderr
    assert not out.exists()

    real = playbook(PLAYBOOKS / "new_robot.yml", extra_vars=variables)

    assert real.rc == 0, real.stdout + real.stderr
    listing = sh(
        "openssl",
        "pkcs12",
        "-in",
        str(out / "robot09/client.p12"),
        "-passin",
        f"pass:{PFX_PASSPHRASE}",
        "-nokeys",
        "-clcerts",
    )
    assert listing.returncode == 0 and "CN = robot09" in listing.stdout, (
        listing.stdout + listing.stderr
    )
