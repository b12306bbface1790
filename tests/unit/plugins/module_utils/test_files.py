"""_files: clear read errors, atomic writes that leave nothing half-written, and file modes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import _files
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    CertificateError,
)


def test_read_file_missing(tmp_path: Path) -> None:
    with pytest.raises(
        CertificateError,
        match=r"^issuer_cert_path '.*/absent.pem' does not exist; check the path$",
    ):
        _files.read_file(str(tmp_path / "absent.pem"), what="issuer_cert_path")


def test_read_file_directory(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match="is a directory, not a file"):
        _files.read_file(str(tmp_path), what="certificate_path")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_read_file_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_bytes(b"x")
    path.chmod(0)

    with pytest.raises(CertificateError, match="permission denied"):
        _files.read_file(str(path), what="privatekey_path")


def test_read_optional(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"data")

    assert _files.read_optional(str(tmp_path / "a"), what="x") == b"data"
    assert _files.read_optional(str(tmp_path / "b"), what="x") is None


def test_write_creates_secret_file_and_private_parents(tmp_path: Path) -> None:
    target = tmp_path / "robots" / "robot01" / "client.key"

    _files.write_files(
        [_files.PlannedWrite(str(target), b"KEY", _files.SECRET_MODE, secret=True)]
    )

    assert target.read_bytes() == b"KEY"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "robots").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "robots" / "robot01").stat().st_mode) == 0o700
    assert sorted(p.name for p in target.parent.iterdir()) == ["client.key"]


def test_public_file_mode_and_parent(tmp_path: Path) -> None:
    target = tmp_path / "pem" / "chain.pem"

    _files.write_files([_files.PlannedWrite(str(target), b"PEM", _files.PUBLIC_MODE)])

    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o755


def test_temp_file_is_private_before_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        seen.append(stat.S_IMODE(os.stat(src).st_mode))
        assert Path(src).parent == Path(dst).parent
        real_replace(src, dst)

    monkeypatch.setattr(_files.os, "replace", spy)

    _files.write_files(
        [
            _files.PlannedWrite(
                str(tmp_path / "robot.p12"), b"PFX", _files.SECRET_MODE, secret=True
            )
        ]
    )

    assert seen == [0o600]


def test_failure_while_preparing_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, cert = tmp_path / "client.key", tmp_path / "client.pem"
    key.write_bytes(b"OLD KEY")
    cert.write_bytes(b"OLD CERT")
    real_fsync = os.fsync
    calls = {"n": 0}

    def failing_fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device", str(cert))
        real_fsync(fd)

    monkeypatch.setattr(_files.os, "fsync", failing_fsync)
    writes = [
        _files.PlannedWrite(str(key), b"NEW KEY", _files.SECRET_MODE, secret=True),
        _files.PlannedWrite(str(cert), b"NEW CERT", _files.PUBLIC_MODE),
    ]

    with pytest.raises(
        CertificateError,
        match=r"cannot write .*client.pem.: No space left on device; no file was changed",
    ):
        _files.write_files(writes)

    assert key.read_bytes() == b"OLD KEY" and cert.read_bytes() == b"OLD CERT"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["client.key", "client.pem"]


def test_unwritable_target_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"x")
    good = tmp_path / "good.pem"
    writes = [
        _files.PlannedWrite(str(good), b"A", _files.PUBLIC_MODE),
        _files.PlannedWrite(str(blocker / "sub" / "b.pem"), b"B", _files.PUBLIC_MODE),
    ]

    with pytest.raises(
        CertificateError,
        match=r"pem_path '.*' cannot be written: '.*/file' is not a directory",
    ):
        _files.write_files(writes, what={str(blocker / "sub" / "b.pem"): "pem_path"})

    assert not good.exists()


def test_directory_as_target(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match="is a directory; give a file path"):
        _files.check_writable(str(tmp_path), what="path")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)

    with pytest.raises(CertificateError, match="no write permission"):
        _files.check_writable(str(folder / "a.pem"), what="path")


def test_needs_write_and_apply_writes(tmp_path: Path) -> None:
    path = tmp_path / "a.key"
    path.write_bytes(b"same")
    path.chmod(0o644)
    before = path.stat().st_ino

    assert _files.needs_write(str(path), b"same", 0o600, b"same") is True
    touched = _files.apply_writes(
        [_files.PlannedWrite(str(path), b"same", 0o600, secret=True)],
        {str(path): b"same"},
    )

    assert touched == [str(path)]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (
        path.stat().st_ino == before
    )  # only the mode changed; the content was not rewritten
    assert _files.needs_write(str(path), b"same", 0o600, b"same") is False
    assert _files.needs_write(str(path), b"other", 0o600, b"same") is True
    assert _files.needs_write(str(tmp_path / "new"), b"x", 0o600, None) is True
