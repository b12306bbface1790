"""The record cert_export keeps next to each PKCS#12: it may only ever save work, never hide a change."""

from __future__ import annotations

import hashlib
import json
import typing as t
from pathlib import Path

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _cert_export,
    _cert_generate,
    _pkcs12,
    _pkcs12_record,
)
from tests.helpers import LEGACY_PBE, pkcs12_encryption, sh

PASSPHRASE = "record-pfx-passphrase"


def _params(spec: dict[str, t.Any], values: dict[str, t.Any]) -> dict[str, t.Any]:
    result = ArgumentSpecValidator(spec).validate(values)
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


@pytest.fixture
def identity(tmp_path: Path) -> dict[str, t.Any]:
    ca = {"path": str(tmp_path / "ca.crt"), "privatekey_path": str(tmp_path / "ca.key")}
    _cert_generate.run(
        _params(
            _cert_generate.ARGUMENT_SPEC,
            dict(ca, purpose="ca", subject={"common_name": "Record CA"}),
        ),
        check_mode=False,
    )
    leaf = {
        "path": str(tmp_path / "client.crt"),
        "privatekey_path": str(tmp_path / "client.key"),
    }
    _cert_generate.run(
        _params(
            _cert_generate.ARGUMENT_SPEC,
            dict(
                leaf,
                subject={"common_name": "robot01"},
                issuer_cert_path=ca["path"],
                issuer_privatekey_path=ca["privatekey_path"],
            ),
        ),
        check_mode=False,
    )
    return {
        "certificate_path": leaf["path"],
        "privatekey_path": leaf["privatekey_path"],
        "chain_paths": [ca["path"]],
        "pkcs12_path": str(tmp_path / "client.p12"),
        "pkcs12_passphrase": PASSPHRASE,
        "pkcs12_profile": "modern",
    }


def _export(values: dict[str, t.Any]) -> tuple[bool, dict[str, t.Any]]:
    changed, result, _diff, _warnings = _cert_export.run(
        _params(_cert_export.ARGUMENT_SPEC, values), check_mode=False
    )
    return changed, result


def _state(values: dict[str, t.Any]) -> Path:
    return Path(values["pkcs12_path"] + ".state")


def test_the_record_is_written_with_the_pkcs12_and_holds_no_secret(
    identity: dict[str, t.Any],
) -> None:
    _export(identity)

    state = _state(identity)
    assert state.stat().st_mode & 0o777 == 0o600
    text = state.read_text()
    assert PASSPHRASE not in text and "PRIVATE KEY" not in text
    record = json.loads(text)
    assert record["profile"] == "modern" and len(record["cert_sha256"]) == 2


def test_an_unchanged_run_with_its_record_does_not_open_the_pkcs12(
    identity: dict[str, t.Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _export(identity)

    def refuse(*_args: t.Any, **_kwargs: t.Any) -> t.NoReturn:
        raise AssertionError(
            "the PKCS#12 was opened although its record proves it unchanged"
        )

    monkeypatch.setattr(_pkcs12, "pkcs12_matches", refuse)
    monkeypatch.setattr(_pkcs12, "load_pkcs12", refuse)
    changed, result = _export(identity)

    assert not changed and result["reasons"] == []


def test_a_new_passphrase_rewrites_the_file_despite_the_record(
    identity: dict[str, t.Any],
) -> None:
    _export(identity)
    new = dict(identity, pkcs12_passphrase="another-pfx-passphrase")

    changed, _result = _export(new)

    assert changed
    opened = sh(
        "openssl",
        "pkcs12",
        "-info",
        "-nokeys",
        "-noout",
        "-passin",
        "pass:another-pfx-passphrase",
        "-in",
        new["pkcs12_path"],
    )
    assert opened.returncode == 0, opened.stderr
    assert not _export(new)[0]


def test_a_replaced_pkcs12_is_opened_and_put_right(
    identity: dict[str, t.Any], tmp_path: Path
) -> None:
    _export(identity)
    # Another valid PKCS#12 with the same passphrase but another friendly name, put in place by hand.
    other = dict(
        identity, pkcs12_path=str(tmp_path / "other.p12"), friendly_name="someone else"
    )
    _export(other)
    Path(identity["pkcs12_path"]).write_bytes(Path(other["pkcs12_path"]).read_bytes())

    changed, result = _export(identity)

    assert changed and "friendly name differs" in result["reasons"]


@pytest.mark.parametrize("damage", ["delete", "garbage", "other-file"])
def test_a_missing_or_broken_record_falls_back_to_opening_the_pkcs12(
    identity: dict[str, t.Any], tmp_path: Path, damage: str
) -> None:
    _export(identity)
    state = _state(identity)
    if damage == "delete":
        state.unlink()
    elif damage == "garbage":
        state.write_text("{not json")
    else:
        other = dict(identity, pkcs12_path=str(tmp_path / "other.p12"))
        _export(other)
        state.write_bytes(_state(other).read_bytes())
    before = Path(identity["pkcs12_path"]).read_bytes()

    changed, _result = _export(identity)

    assert not changed, (
        "an unchanged PKCS#12 was rewritten because its record was missing or broken"
    )
    assert Path(identity["pkcs12_path"]).read_bytes() == before
    # The record was written again, so the next unchanged run is the quick one.
    assert state.stat().st_mode & 0o777 == 0o600
    assert json.loads(state.read_text())["friendly_name"] == _result["friendly_name"]


def test_a_record_readable_by_others_gets_mode_0600_back(
    identity: dict[str, t.Any],
) -> None:
    _export(identity)
    state = _state(identity)
    state.chmod(0o644)

    changed, result = _export(identity)

    assert changed and result["reasons"] == [f"mode of {state} is not 0600"]
    assert state.stat().st_mode & 0o777 == 0o600
    assert not _export(identity)[0]


def test_a_record_asking_for_more_rounds_is_ignored(
    identity: dict[str, t.Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _export(identity)
    state = _state(identity)
    record = json.loads(state.read_text())
    record["passphrase_pbkdf2_sha256"]["rounds"] = 10**8
    state.write_text(json.dumps(record))
    opened: list[bool] = []
    real = _pkcs12.pkcs12_matches

    def spy(*args: t.Any, **kwargs: t.Any) -> bool:
        opened.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(_pkcs12, "pkcs12_matches", spy)
    changed, _result = _export(identity)

    assert not changed and opened == [True], (
        "the edited record was trusted instead of opening the PKCS#12"
    )


def test_a_changed_profile_is_not_hidden_by_the_record(
    identity: dict[str, t.Any],
) -> None:
    _export(identity)

    changed, result = _export(dict(identity, pkcs12_profile="legacy"))

    assert changed and any("profile" in reason for reason in result["reasons"])
    assert LEGACY_PBE in pkcs12_encryption(identity["pkcs12_path"], PASSPHRASE)


def test_a_wave_of_records_costs_one_passphrase_derivation_per_salt(
    identity: dict[str, t.Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Five PKCS#12 files of one identity, as one process writes a wave: their records share a salt.
    waves = [dict(identity, pkcs12_path=str(tmp_path / f"r{i}.p12")) for i in range(5)]
    for values in waves:
        assert _export(values)[0]
    salts = {
        json.loads(_state(v).read_text())["passphrase_pbkdf2_sha256"]["salt"]
        for v in waves
    }
    assert len(salts) == 1
    # A record another process wrote (its own salt) is still checked, and checked for real.
    foreign = json.loads(_state(waves[0]).read_text())
    foreign_salt = bytes(range(16))
    foreign["passphrase_pbkdf2_sha256"].update(
        salt=foreign_salt.hex(),
        value=hashlib.pbkdf2_hmac(
            "sha256", PASSPHRASE.encode(), foreign_salt, 10000
        ).hex(),
    )
    _state(waves[0]).write_text(json.dumps(foreign))
    monkeypatch.setattr(_pkcs12_record, "_CHECKS", {})
    derived: list[bytes] = []
    real = hashlib.pbkdf2_hmac

    def counted(name: str, password: bytes, salt: bytes, rounds: int) -> bytes:
        derived.append(salt)
        return real(name, password, salt, rounds)

    monkeypatch.setattr(_pkcs12_record.hashlib, "pbkdf2_hmac", counted)
    monkeypatch.setattr(_pkcs12, "load_pkcs12", _refuse_to_open)

    assert not any(_export(values)[0] for values in waves)
    assert sorted(derived) == sorted([foreign_salt, bytes.fromhex(salts.pop())])


def _refuse_to_open(*_args: t.Any, **_kwargs: t.Any) -> t.NoReturn:
    raise AssertionError(
        "the PKCS#12 was opened although its record proves it unchanged"
    )
