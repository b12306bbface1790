# This file is internal to the snowrpa.robot_certs collection and may change in any release.
"""Reading input files with clear errors and writing output files atomically."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import stat
import tempfile

from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    CertificateError,
)

SECRET_MODE = 0o600
PUBLIC_MODE = 0o644
SECRET_DIR_MODE = 0o700
PUBLIC_DIR_MODE = 0o755


def read_file(path: str, *, what: str) -> bytes:
    """Return the bytes of PATH; WHAT names the option or role of the file in errors."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise CertificateError(
            f"{what} {path!r} does not exist; check the path"
        ) from None
    except IsADirectoryError:
        raise CertificateError(
            f"{what} {path!r} is a directory, not a file; give the path of the file"
        ) from None
    except PermissionError:
        raise CertificateError(
            f"{what} {path!r} cannot be read: permission denied; run as a user who can read it"
        ) from None
    except OSError as exc:
        raise CertificateError(
            f"{what} {path!r} cannot be read: {exc.strerror or exc}; check the file and its folder"
        ) from None


def exists(path: str) -> bool:
    """True when PATH is there (a dangling link counts: reading it gives the real error)."""
    return os.path.lexists(path)


def read_optional(path: str, *, what: str) -> bytes | None:
    """Like read_file, but None when PATH does not exist yet (an output that will be created)."""
    if not exists(path):
        return None
    return read_file(path, what=what)


def file_mode(path: str) -> int | None:
    """Permission bits of PATH, or None when it does not exist."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return None


@dataclasses.dataclass(frozen=True)
class PlannedWrite:
    """One output file: its final path, content and mode; SECRET says it holds key material."""

    path: str
    data: bytes
    mode: int
    secret: bool = False


def needs_write(path: str, data: bytes, mode: int, current: bytes | None) -> bool:
    """True when the bytes or the mode of PATH differ from what should be there."""
    if current is None or current != data:
        return True
    return file_mode(path) != mode


def _missing_parents(folder: str) -> list[str]:
    missing: list[str] = []
    while folder and not os.path.exists(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return list(reversed(missing))


def check_writable(path: str, *, what: str) -> None:
    """Fail before anything is written when the folder of PATH cannot take the file."""
    if os.path.isdir(path):
        raise CertificateError(f"{what} {path!r} is a directory; give a file path")
    folder = os.path.dirname(os.path.abspath(path))
    probe = folder
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise CertificateError(
            f"{what} {path!r} cannot be written: {probe!r} is not a directory; give a path inside a folder"
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise CertificateError(
            f"{what} {path!r} cannot be written: no write permission on {probe!r}; run as a user who can write there"
        )


def _remove_orphaned_temps(folder: str, name: str) -> None:
    """Remove temp files for NAME left by a writer that was killed before it could rename or remove them."""
    prefix = f".{name}."
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        if not (entry.startswith(prefix) and entry.endswith(".tmp")):
            continue
        pid_text = entry[len(prefix) :].split(".", 1)[0]
        if not pid_text.isdigit() or _process_alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(folder, entry))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _prepare(write: PlannedWrite) -> str:
    folder = os.path.dirname(os.path.abspath(write.path))
    for missing in _missing_parents(folder):
        # Another process writing into the same new folder may create it first (forks, batch workers).
        with contextlib.suppress(FileExistsError):
            os.mkdir(missing, SECRET_DIR_MODE if write.secret else PUBLIC_DIR_MODE)
    _remove_orphaned_temps(folder, os.path.basename(write.path))
    # mkstemp creates the file 0600, so key material is never readable by others, not even briefly.
    # The writer's pid in the name tells a later run whether the temp file's writer is gone.
    handle, temp = tempfile.mkstemp(
        dir=folder,
        prefix=f".{os.path.basename(write.path)}.{os.getpid()}.",
        suffix=".tmp",
    )
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(write.data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp, write.mode)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return temp


def write_files(
    writes: list[PlannedWrite], *, what: dict[str, str] | None = None
) -> None:
    """Write every file atomically: all temp files first, then rename them all.

    A failure while preparing removes every temp file, so no output is changed; only the final
    renames (cheap, same folder) can still fail one by one.
    """
    names = what or {}
    for write in writes:
        check_writable(write.path, what=names.get(write.path, "output file"))
    prepared: list[tuple[str, PlannedWrite]] = []
    current = writes[0] if writes else None
    renaming = False
    try:
        for current in writes:
            prepared.append((_prepare(current), current))
        renaming = True
        for temp, current in prepared:
            os.replace(temp, current.path)
    except OSError as exc:
        for temp, _write in prepared:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        failed = current.path if current is not None else exc.filename
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
        outcome = (
            "files renamed before it are already in place"
            if renaming
            else "no file was changed"
        )
        raise CertificateError(
            f"cannot write {failed!r}: {reason}; {outcome}"
        ) from None
    except BaseException:
        # Interrupted (a signal in a batch worker): the temp files must not outlive the run.
        for temp, _write in prepared:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        raise


def set_mode(path: str, mode: int) -> None:
    """Apply MODE to an existing PATH whose content is already right."""
    try:
        os.chmod(path, mode)
    except OSError as exc:
        raise CertificateError(
            f"cannot set mode {mode:04o} on {path!r}: {exc.strerror or exc}; run as the owner of the file"
        ) from None


def apply_writes(
    writes: list[PlannedWrite],
    current: dict[str, bytes | None],
    *,
    what: dict[str, str] | None = None,
) -> list[str]:
    """Write the files whose content differs and fix modes of the others; return the paths touched."""
    content_changes = [w for w in writes if current.get(w.path) != w.data]
    mode_only = [
        w for w in writes if w not in content_changes and file_mode(w.path) != w.mode
    ]
    if content_changes:
        write_files(content_changes, what=what)
    for write in mode_only:
        set_mode(write.path, write.mode)
    return [w.path for w in content_changes + mode_only]


__all__ = (
    "PUBLIC_DIR_MODE",
    "PUBLIC_MODE",
    "SECRET_DIR_MODE",
    "SECRET_MODE",
    "PlannedWrite",
    "apply_writes",
    "check_writable",
    "exists",
    "file_mode",
    "needs_write",
    "read_file",
    "read_optional",
    "set_mode",
    "write_files",
)
