"""cert_export through its action plugin: inputs, idempotency, profiles and bad input."""

from __future__ import annotations

import datetime
import os
import typing as t
from pathlib import Path
from unittest import mock

import cryptography_vectors
import pytest

from ansible_collections.snowrpa.robot_certs.plugins.action.cert_export import (
    ActionModule,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils import _pkcs12, _pki
from tests.helpers import snapshot
from tests.unit.plugins.module_utils.pki_fixtures import (
    Identity,
    make_identity,
    run,
    write_pem,
)

VECTORS = Path(os.path.dirname(cryptography_vectors.__file__)) / "pkcs12"


def run_action(
    args: dict[str, t.Any], *, check: bool = False, diff: bool = False
) -> dict[str, t.Any]:
    task = mock.MagicMock()
    task.args = args
    task.check_mode = check
    task.diff = diff
    task.async_val = 0
    task.action = "snowrpa.robot_certs.cert_export"
    action = ActionModule(
        task,
        mock.MagicMock(),
        mock.MagicMock(),
        mock.MagicMock(),
        mock.MagicMock(),
        mock.MagicMock(),
    )
    return action.run(task_vars={})


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Identity]]:
    folder = tmp_path_factory.mktemp("pki")
    root = make_identity("ca", "Robot Root CA")
    issuing = make_identity("ca", "Robot Issuing CA", issuer=root)
    leaf = make_identity("client_auth", "robot01", issuer=issuing)
    write_pem(folder / "root.pem", root.cert)
    write_pem(folder / "issuing.pem", issuing.cert)
    write_pem(folder / "leaf.pem", leaf.cert)
    write_pem(folder / "bundle.pem", root.cert, leaf.cert, issuing.cert)
    (folder / "leaf.key").write_bytes(_pki.serialize_private_key(leaf.key, "key-pass"))
    return folder, {"root": root, "issuing": issuing, "leaf": leaf}


def test_key_cert_and_chain_in_any_order(
    tmp_path: Path, pki: tuple[Path, dict[str, Identity]]
) -> None:
    folder, ids = pki
    args = {
        "certificate_path": str(folder / "leaf.pem"),
        "privatekey_path": str(folder / "leaf.key"),
        "privatekey_passphrase": "key-pass",
        "chain_paths": [str(folder / "root.pem"), str(folder / "issuing.pem")],
        "pem_path": str(tmp_path / "chain.pem"),
        "pkcs12_path": str(tmp_path / "robot.p12"),
        "pkcs12_passphrase": "pfx-pass",
        "purpose": "client_auth",
    }

    result = run_action(args)

    assert result["changed"] is True, result
    assert result["chain_thumbprints"] == [
        _pki.thumbprint(ids["issuing"].cert),
        _pki.thumbprint(ids["root"].cert),
    ]
    assert _pki.load_certificates(
        (tmp_path / "chain.pem").read_bytes(), source="x"
    ) == [ids["leaf"].cert, ids["issuing"].cert, ids["root"].cert]
    assert "pfx-pass" not in repr(result) and "key-pass" not in repr(result)
    assert run_action(args)["changed"] is False


def test_pem_bundle_without_key_writes_ordered_chain(
    tmp_path: Path, pki: tuple[Path, dict[str, Identity]]
) -> None:
    folder, ids = pki

    result = run_action(
        {
            "certificate_path": str(folder / "bundle.pem"),
            "pem_path": str(tmp_path / "chain.pem"),
        }
    )

    assert result["changed"] is True and result["thumbprint"] == _pki.thumbprint(
        ids["leaf"].cert
    )
    out = _pki.load_certificates((tmp_path / "chain.pem").read_bytes(), source="x")
    assert out == [ids["leaf"].cert, ids["issuing"].cert, ids["root"].cert]
    verify = run(
        "openssl",
        "verify",
        "-purpose",
        "sslclient",
        "-CAfile",
        str(folder / "root.pem"),
        "-untrusted",
        str(tmp_path / "chain.pem"),
        str(tmp_path / "chain.pem"),
    )
    assert verify.returncode == 0, verify.stderr


def test_pkcs12_without_key_source_needs_key(
    tmp_path: Path, pki: tuple[Path, dict[str, Identity]]
) -> None:
    folder, _ids = pki

    result = run_action(
        {
            "certificate_path": str(folder / "bundle.pem"),
            "pkcs12_path": str(tmp_path / "r.p12"),
            "pkcs12_passphrase": "x",
        }
    )

    assert result["failed"] and result["msg"].startswith(
        "pkcs12_path needs the private key"
    )
    assert not (tmp_path / "r.p12").exists()


@pytest.mark.parametrize(
    ("name", "passphrase"),
    [
        ("cert-key-aes256cbc.p12", "cryptography"),
        ("cert-rc2-key-3des.p12", "cryptography"),
        ("cert-none-key-none.p12", "cryptography"),
        ("no-password.p12", None),
        ("name-all-pwd.p12", "password"),
        ("name-unicode-pwd.p12", "password"),
        ("name-unicode-no-pwd.p12", None),
        ("no-name-no-pwd.p12", None),
    ],
)
@pytest.mark.parametrize("profile", ["modern", "legacy"])
def test_bring_your_own_pkcs12(
    tmp_path: Path, name: str, passphrase: str | None, profile: str
) -> None:
    source = _pkcs12.load_pkcs12((VECTORS / name).read_bytes(), passphrase, source=name)
    args = {
        "pkcs12_src": str(VECTORS / name),
        "pkcs12_path": str(tmp_path / "out.p12"),
        "pkcs12_passphrase": "new-pass",
        "pkcs12_profile": profile,
    }
    if passphrase:
        args["pkcs12_src_passphrase"] = passphrase

    result = run_action(args)

    assert result["changed"] is True, result
    info = run(
        "openssl",
        "pkcs12",
        "-info",
        "-noout",
        "-in",
        str(tmp_path / "out.p12"),
        "-passin",
        "pass:new-pass",
    )
    assert info.returncode == 0, info.stderr
    assert (
        "MAC: sha256" if profile == "modern" else "MAC: sha1"
    ) in info.stdout + info.stderr
    written = _pkcs12.load_pkcs12(
        (tmp_path / "out.p12").read_bytes(), "new-pass", source="out"
    )
    assert written.certificate == source.certificate
    assert _pki.private_key_der(written.private_key) == _pki.private_key_der(
        source.private_key
    )
    if source.friendly_name:
        assert written.friendly_name == source.friendly_name
    if source.chain:
        assert any("is not in the chain" in w for w in result.get("warnings", []))
    assert run_action(args)["changed"] is False


def test_certificate_only_trust_store_rejected(tmp_path: Path) -> None:
    result = run_action(
        {
            "pkcs12_src": str(VECTORS / "java-truststore.p12"),
            "pem_path": str(tmp_path / "c.pem"),
        }
    )

    assert result["failed"] is True
    assert (
        "holds no private key (a certificate-only or trust store file)" in result["msg"]
    )
    assert list(tmp_path.iterdir()) == []


def test_check_mode_and_diff(
    tmp_path: Path, pki: tuple[Path, dict[str, Identity]]
) -> None:
    folder, ids = pki
    args = {
        "certificate_path": str(folder / "bundle.pem"),
        "privatekey_path": str(folder / "leaf.key"),
        "privatekey_passphrase": "key-pass",
        "pkcs12_path": str(tmp_path / "robot.p12"),
        "pkcs12_passphrase": "pfx-pass",
        "pkcs12_profile": "modern",
    }

    preview = run_action(args, check=True, diff=True)

    assert preview["changed"] is True and list(tmp_path.iterdir()) == []
    assert preview["diff"]["after"]["pkcs12"]["profile"] == "modern"
    assert preview["diff"]["before"]["pkcs12"] == {}
    run_action(args)
    before = snapshot(tmp_path)
    switched = run_action({**args, "pkcs12_profile": "legacy"}, check=True, diff=True)
    assert switched["changed"] is True and switched["reasons"] == [
        "encryption profile is modern, not legacy"
    ]
    assert switched["diff"]["before"]["pkcs12"]["profile"] == "modern"
    assert snapshot(tmp_path) == before
    assert "pfx-pass" not in repr(switched)


def test_new_passphrase_or_friendly_name_rewrites(
    tmp_path: Path, pki: tuple[Path, dict[str, Identity]]
) -> None:
    folder, _ids = pki
    args = {
        "certificate_path": str(folder / "bundle.pem"),
        "privatekey_path": str(folder / "leaf.key"),
        "privatekey_passphrase": "key-pass",
        "pkcs12_path": str(tmp_path / "robot.p12"),
        "pkcs12_passphrase": "pfx-pass",
    }
    run_action(args)

    renamed = run_action({**args, "friendly_name": "Robot 01"})
    repassed = run_action(
        {**args, "friendly_name": "Robot 01", "pkcs12_passphrase": "other-pass"}
    )

    assert renamed["reasons"] == ["friendly name differs"]
    assert repassed["reasons"] == [
        "existing PKCS#12 does not open with pkcs12_passphrase or is not ours"
    ]
    assert (tmp_path / "robot.p12").stat().st_mode & 0o777 == 0o600


def test_expired_certificate_refused(tmp_path: Path) -> None:
    old = make_identity(
        "client_auth",
        "old robot",
        valid_days=5,
        now=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=10),
    )
    write_pem(tmp_path / "old.pem", old.cert)

    result = run_action(
        {
            "certificate_path": str(tmp_path / "old.pem"),
            "pem_path": str(tmp_path / "out.pem"),
        }
    )

    assert result["failed"] and "expired on" in result["msg"]
    assert not (tmp_path / "out.pem").exists()


def test_options_checked_by_spec(tmp_path: Path) -> None:
    both = run_action(
        {"certificate_path": "a", "pkcs12_src": "b", "pem_path": str(tmp_path / "x")}
    )
    neither = run_action({"certificate_path": "a"})

    assert (
        both["failed"]
        and "mutually exclusive: certificate_path|pkcs12_src" in both["msg"]
    )
    assert (
        neither["failed"]
        and "one of the following is required: pem_path, pkcs12_path" in neither["msg"]
    )


@pytest.mark.parametrize("encrypted", [False, True])
def test_combined_pem_from_openssl_brings_its_key(
    tmp_path: Path, pki: tuple[Path, dict[str, Identity]], encrypted: bool
) -> None:
    """`openssl pkcs12 -nodes` output (bag attributes, certificates, key) works as certificate_path alone."""
    folder, ids = pki
    made = run_action(
        {
            "certificate_path": str(folder / "bundle.pem"),
            "privatekey_path": str(folder / "leaf.key"),
            "privatekey_passphrase": "key-pass",
            "pkcs12_path": str(tmp_path / "src.p12"),
            "pkcs12_passphrase": "src-pass",
        }
    )
    assert made["changed"], made
    combined = tmp_path / "combined.pem"
    options = ["-passout", "pass:pem-pass"] if encrypted else ["-nodes"]
    dumped = run(
        "openssl",
        "pkcs12",
        "-in",
        str(tmp_path / "src.p12"),
        "-passin",
        "pass:src-pass",
        "-out",
        str(combined),
        *options,
    )
    assert dumped.returncode == 0, dumped.stderr
    args = {
        "certificate_path": str(combined),
        "pkcs12_path": str(tmp_path / "out.p12"),
        "pkcs12_passphrase": "out-pass",
    }
    if encrypted:
        args["privatekey_passphrase"] = "pem-pass"

    result = run_action(args)

    assert result["changed"] is True, result
    assert result["chain_thumbprints"] == [
        _pki.thumbprint(ids["issuing"].cert),
        _pki.thumbprint(ids["root"].cert),
    ]
    written = _pkcs12.load_pkcs12(
        (tmp_path / "out.p12").read_bytes(), "out-pass", source="out"
    )
    assert _pki.private_key_der(written.private_key) == _pki.private_key_der(
        ids["leaf"].key
    )


def test_check_mode_before_the_certificate_exists_predicts_the_export(
    tmp_path: Path, pki: tuple[Path, dict[str, Identity]]
) -> None:
    """A new robot in a check-mode run: cert_generate wrote nothing, so the inputs are not there yet."""
    folder, _ids = pki
    new = tmp_path / "robot09"
    args = {
        "certificate_path": str(new / "client.pem"),
        "privatekey_path": str(new / "client.key"),
        "chain_paths": [str(folder / "issuing.pem"), str(folder / "root.pem")],
        "pem_path": str(new / "chain.pem"),
        "pkcs12_path": str(new / "client.p12"),
        "pkcs12_passphrase": "pfx-pass",
    }

    checked = run_action(args, check=True, diff=True)
    real = run_action(args)

    assert checked.get("failed") is not True, checked
    assert checked["changed"] is True
    assert checked["reasons"] == [
        f"would export once {new / 'client.pem'} exists",
        f"would export once {new / 'client.key'} exists",
    ]
    assert checked["thumbprint"] is None
    assert any(
        f"would export once {new / 'client.pem'} exists" in w
        for w in checked["warnings"]
    )
    assert not new.exists()
    assert real["failed"] is True
    assert real["msg"] == (
        f"certificate_path {str(new / 'client.pem')!r} does not exist; check the path"
    )
    assert not new.exists()


def test_check_mode_with_missing_input_still_checks_the_outputs(
    tmp_path: Path, pki: tuple[Path, dict[str, Identity]]
) -> None:
    (tmp_path / "file").write_text("not a folder")

    result = run_action(
        {
            "certificate_path": str(tmp_path / "absent.pem"),
            "pem_path": str(tmp_path / "file" / "chain.pem"),
        },
        check=True,
    )

    assert result["failed"] is True and "is not a directory" in result["msg"]
