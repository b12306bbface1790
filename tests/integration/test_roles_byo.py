"""Bring your own certificates: PKCS#12 files exported from another CA (as from AD CS) go through
provision.yml unchanged, are registered and mapped in ServiceNow, and log in over mutual TLS."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from roles_fleet import PASSPHRASE, Fleet, openssl, pkcs12_info

from tests.servicenow_double.fixture import SnowInstance

# Playbook runs against the ServiceNow double: seconds each, a minute on a busy machine.
pytestmark = pytest.mark.slow

ADCS_PASSPHRASE = "adcs-export-passphrase"


def _adcs_export(tmp_path: Path, host: str, ca: Path, ca_key: Path) -> dict[str, str]:
    """What an AD CS admin hands over per robot: one PKCS#12 per purpose, with the chain."""
    files = {}
    for purpose, eku, usage in (
        ("client", "clientAuth", "digitalSignature,keyEncipherment"),
        ("codesign", "codeSigning", "digitalSignature"),
    ):
        key, csr, cert = (
            tmp_path / f"{host}-{purpose}.{ext}" for ext in ("key", "csr", "crt")
        )
        ext = tmp_path / f"{host}-{purpose}.ext"
        ext.write_text(
            f"extendedKeyUsage={eku}\nkeyUsage=critical,{usage}\nbasicConstraints=CA:FALSE\n",
            encoding="utf-8",
        )
        steps = [
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/O=AD CS/CN={host} {purpose}"],
            ["x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-days", "200",
             "-sha256", "-extfile", str(ext), "-out", str(cert)],
            ["pkcs12", "-export", "-inkey", str(key), "-in", str(cert), "-certfile", str(ca), "-name", f"{host} {purpose}",
             "-passout", f"pass:{ADCS_PASSPHRASE}", "-out", str(tmp_path / f"{host}-{purpose}.pfx")],
        ]  # fmt: skip
        for step in steps:
            done = openssl(*step)
            assert done.returncode == 0, done.stderr
        files[purpose] = str(tmp_path / f"{host}-{purpose}.pfx")
    return files


def test_bring_your_own_pkcs12_files_are_mapped_and_log_in(
    playbook: t.Callable[..., t.Any],
    tmp_path: Path,
    snow_instance: SnowInstance,
) -> None:
    adcs = tmp_path / "adcs"
    adcs.mkdir()
    ca, ca_key = adcs / "root.crt", adcs / "root.key"
    done = openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "400",
        "-subj", "/O=AD CS/CN=Corporate Issuing CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    robots: dict[str, dict[str, t.Any]] = {}
    for host, build in (("robot01", 20348), ("robot02", 14393)):
        files = _adcs_export(adcs, host, ca, ca_key)
        robots[host] = {
            "robot_snow_user": f"byo.{host}",
            "robot_os_build": build,
            "robot_identity_client_pkcs12_src": files["client"],
            "robot_identity_codesign_pkcs12_src": files["codesign"],
        }
    fleet = Fleet(
        tmp_path,
        snow_instance,
        robots,
        group_vars={
            "robot_identity_ca_source": "byo",
            "robot_identity_ca_chain_paths": [str(ca)],
            "robot_identity_pkcs12_src_passphrase": ADCS_PASSPHRASE,
            "servicenow_cba_ca_name": "Corporate Issuing CA",
        },
    )

    run = fleet.run(playbook, "provision.yml")

    assert run.rc == 0, run.stdout[-3000:]
    assert not (fleet.certs / "ca").exists(), (
        "a robot CA was created although the certificates are brought"
    )
    for host, variables in robots.items():
        client = fleet.dir(host) / "client.p12"
        assert (
            snow_instance.login_with_pkcs12(client, PASSPHRASE)
            == variables["robot_snow_user"]
        )
        expected = (
            "AES-256-CBC"
            if variables["robot_os_build"] >= 17763
            else "pbeWithSHA1And3-KeyTripleDES-CBC"
        )
        assert expected in pkcs12_info(client)
        assert expected in pkcs12_info(fleet.dir(host) / "codesign.p12")
        verified = openssl(
            "verify",
            "-purpose",
            "sslclient",
            "-CAfile",
            str(ca),
            str(fleet.dir(host) / "client.pem"),
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
