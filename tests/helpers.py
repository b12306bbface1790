"""Small helpers shared by the unit and integration tests."""

from __future__ import annotations

import subprocess
from pathlib import Path


def snapshot(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file under FOLDER with its bytes, mode and mtime: equal snapshots mean nothing was written."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            info = path.stat()
            found[str(path.relative_to(folder))] = (
                path.read_bytes(),
                info.st_mode & 0o777,
                info.st_mtime_ns,
            )
    return found


def sh(*command: str) -> subprocess.CompletedProcess[str]:
    """Run an independent command-line tool (openssl, keytool, ...) and keep its output."""
    return subprocess.run(list(command), capture_output=True, text=True, check=False)


LEGACY_PBE = "pbeWithSHA1And3-KeyTripleDES-CBC"


def pkcs12_encryption(path: str | Path, passphrase: str) -> str:
    """What `openssl pkcs12 -info` reports about a PKCS#12's encryption (it lists the PBEs on stderr)."""
    done = sh(
        "openssl", "pkcs12", "-info", "-nokeys", "-noout", "-legacy",
        "-passin", f"pass:{passphrase}", "-in", str(path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stderr
