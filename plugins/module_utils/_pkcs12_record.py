# This file is internal to the snowrpa.robot_certs collection and may change in any release.
"""The record cert_export keeps next to each PKCS#12 it writes, so an unchanged run need not open it.

Opening a PKCS#12 with cryptography runs the RSA key check, which costs as much as making the key;
on a fleet's unchanged re-run that check is nearly all of the work. When cert_export writes a
PKCS#12 it also writes ``<pkcs12_path>.state`` (mode 0600): the SHA-256 of the file's bytes, the
fingerprints of the key and certificates that went in, the friendly name, the profile, and a
PBKDF2 check value of the passphrase. A later run that finds the same file bytes, the same inputs
and the same passphrase knows the file is what it would write. Anything else (no record, another
file, other inputs, another passphrase, an unreadable record) falls back to opening the PKCS#12.
The passphrase check value costs more to guess than the file's own MAC (2048 KDF rounds), so the
record reveals nothing the PKCS#12 beside it does not.

The salt of the check value is random per writing process, not per file: the records one process
writes share it (they share the passphrase too, so a per-file salt would not make a guess dearer),
and a process checking a wave's records derives the check value once per salt it meets instead of
once per file, which was most of an unchanged wave's work.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import typing as t

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import _files, _pki
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    CertificateError,
)

SUFFIX = ".state"
FORMAT = 1
PBKDF2_ROUNDS = 10000
# Process-local: the salt this process writes with (made on first use) and the check values it has
# derived, by (passphrase, salt, rounds).
_SALT: list[bytes] = []
_CHECKS: dict[tuple[str, bytes, int], str] = {}
_CHECKS_KEPT = 64


def record_path(pkcs12_path: str) -> str:
    return pkcs12_path + SUFFIX


def read(path: str) -> bytes | None:
    """The record's bytes, or None when there is none that can be read (then the PKCS#12 is opened)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(65536)
    except OSError:
        return None


def write_quietly(path: str, data: bytes) -> None:
    """Write a record (atomically, 0600) when that is possible; a record is only ever an aid."""
    with contextlib.suppress(CertificateError):
        _files.write_files(
            [_files.PlannedWrite(path, data, _files.SECRET_MODE, secret=True)]
        )


def _inputs(
    key: t.Any, certs: t.Sequence[t.Any], friendly_name: str, profile: str
) -> dict[str, t.Any]:
    spki = _pki.public_key_der(key.public_key())
    return {
        "key_sha256": hashlib.sha256(spki).hexdigest(),
        "cert_sha256": [hashlib.sha256(_pki.cert_der(c)).hexdigest() for c in certs],
        "friendly_name": friendly_name,
        "profile": profile,
    }


def _process_salt() -> bytes:
    if not _SALT:
        _SALT.append(os.urandom(16))
    return _SALT[0]


def _passphrase_check(passphrase: str, salt: bytes, rounds: int) -> str:
    memo = (passphrase, salt, rounds)
    if memo not in _CHECKS:
        if len(_CHECKS) >= _CHECKS_KEPT:
            _CHECKS.clear()
        _CHECKS[memo] = hashlib.pbkdf2_hmac(
            "sha256", passphrase.encode("utf-8"), salt, rounds
        ).hex()
    return _CHECKS[memo]


def build(
    pkcs12: bytes,
    passphrase: str,
    *,
    key: t.Any,
    certs: t.Sequence[t.Any],
    friendly_name: str,
    profile: str,
) -> bytes:
    """The record for a PKCS#12 just made from these inputs."""
    salt = _process_salt()
    record = {
        "format": FORMAT,
        "pkcs12_sha256": hashlib.sha256(pkcs12).hexdigest(),
        **_inputs(key, certs, friendly_name, profile),
        "passphrase_pbkdf2_sha256": {
            "salt": salt.hex(),
            "rounds": PBKDF2_ROUNDS,
            "value": _passphrase_check(passphrase, salt, PBKDF2_ROUNDS),
        },
    }
    return (json.dumps(record, indent=1, sort_keys=True) + "\n").encode("ascii")


def matches(
    record: bytes | None,
    pkcs12: bytes | None,
    passphrase: str,
    *,
    key: t.Any,
    certs: t.Sequence[t.Any],
    friendly_name: str,
    profile: str,
) -> bool:
    """True only when RECORD proves PKCS12 is what these inputs and PASSPHRASE would give."""
    if record is None or pkcs12 is None:
        return False
    try:
        found = json.loads(record)
        check = found["passphrase_pbkdf2_sha256"]
        salt, rounds = bytes.fromhex(check["salt"]), int(check["rounds"])
        expected = str(check["value"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return False
    # Exactly our rounds: a record edited to ask for more would make every run as slow as it likes.
    if found.get("format") != FORMAT or rounds != PBKDF2_ROUNDS:
        return False
    if found.get("pkcs12_sha256") != hashlib.sha256(pkcs12).hexdigest():
        return False
    wanted = _inputs(key, certs, friendly_name, profile)
    if any(found.get(name) != value for name, value in wanted.items()):
        return False
    return hmac.compare_digest(expected, _passphrase_check(passphrase, salt, rounds))


__all__ = (
    "FORMAT",
    "SUFFIX",
    "build",
    "matches",
    "read",
    "record_path",
    "write_quietly",
)
