"""Fault tests at fleet scale: provision.yml killed, raced, starved and read at -vvv.

Every check is independent of the collection's own code: openssl parses and verifies what is on
disk, the ServiceNow test double's tables and request log say what the instance received, and
os.stat reads the modes. No timing is asserted here; speed lives in `make bench`.
"""

from __future__ import annotations

import base64
import collections
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pytest
from roles_fleet import (
    PASSPHRASE,
    USER_CERT_PATH,
    Fleet,
    openssl,
    recap_changed,
)

from tests.servicenow_double.fixture import SnowInstance

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CA_RECORD_PATH = "/api/now/table/sys_ca_certificate"
SECRET_SUFFIXES = (".key", ".p12")
ROBOT_FILES = (
    "client.key",
    "client.crt",
    "client.pem",
    "client.p12",
    "codesign.key",
    "codesign.crt",
    "codesign.pem",
    "codesign.p12",
)

pytestmark = pytest.mark.skipif(
    not (REPO / "plugins" / "action" / "cert_export.py").exists()
    or not (REPO / "playbooks" / "provision.yml").exists(),
    reason="provision.yml and the cert_export action are not in this checkout yet",
)


# Running provision.yml.


def playbook_env(tmp_path: Path, **more: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        # Ansible's own temp files land inside the test folder, where the secrets scan reads them.
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local-tmp"),
        ANSIBLE_REMOTE_TEMP=str(tmp_path / "ansible-remote-tmp"),
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    env.update(more)
    return env


def provision_command(fleet: Fleet, *extra: str, **variables: t.Any) -> list[str]:
    if fleet.snow:
        variables.setdefault("servicenow_cba_plugin_poll_interval", 1)
    return [
        str(VENV_BIN / "ansible-playbook"),
        str(REPO / "playbooks" / "provision.yml"),
        "-i",
        str(fleet.inventory),
        "-e",
        json.dumps(fleet.extra_vars(**variables)),
        *extra,
    ]


def provision(
    fleet: Fleet, tmp_path: Path, *extra: str, forks: int = 5, **variables: t.Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        provision_command(fleet, *extra, **variables),
        capture_output=True,
        text=True,
        cwd=REPO,
        env=playbook_env(tmp_path, ANSIBLE_FORKS=str(forks)),
        timeout=300,
        check=False,
    )


def start_provision(
    fleet: Fleet, tmp_path: Path, forks: int = 5
) -> subprocess.Popen[str]:
    """provision.yml in the background, in its own process group so the test can kill all of it."""
    return subprocess.Popen(
        provision_command(fleet),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        env=playbook_env(tmp_path, ANSIBLE_FORKS=str(forks)),
        start_new_session=True,
    )


def wait_for(
    condition: t.Callable[[], bool], proc: subprocess.Popen[str], timeout: float = 120
) -> bool:
    """Poll CONDITION until it holds (True) or PROC ends first (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    raise AssertionError("the condition never held while the playbook ran")


def complete_robots(certs: Path) -> int:
    return sum(
        1 for folder in certs.glob("robot*") if (folder / "codesign.p12").exists()
    )


# Independent checks of what is on disk.


def assert_sound(certs: Path) -> list[Path]:
    """Every key, certificate, PEM and PKCS#12 under CERTS parses with openssl; answers stray temp files."""
    strays = []
    for path in sorted(p for p in certs.rglob("*") if p.is_file()):
        if path.name.startswith("."):
            strays.append(path)
            continue
        if path.suffix == ".key":
            done = openssl("pkey", "-in", str(path), "-noout", "-passin", "pass:")
        elif path.suffix in (".crt", ".pem"):
            done = openssl("x509", "-in", str(path), "-noout")
        elif path.suffix == ".p12":
            done = openssl(
                "pkcs12", "-in", str(path), "-noout", "-passin", f"pass:{PASSPHRASE}"
            )
        else:
            continue
        assert done.returncode == 0, (
            f"{path} is truncated or corrupt: {done.stderr.strip()}"
        )
    return strays


def public_key(path: Path, kind: str) -> str:
    if kind == "key":
        done = openssl("pkey", "-in", str(path), "-pubout")
    elif kind == "p12":
        done = openssl(
            "pkcs12",
            "-in",
            str(path),
            "-nokeys",
            "-clcerts",
            "-passin",
            f"pass:{PASSPHRASE}",
        )
        done = openssl("x509", "-noout", "-pubkey", stdin=done.stdout)
    else:
        done = openssl("x509", "-in", str(path), "-noout", "-pubkey")
    assert done.returncode == 0, f"{path}: {done.stderr.strip()}"
    return done.stdout


def cert_field(path: Path, field: str) -> str:
    done = openssl(
        "x509",
        "-in",
        str(path),
        "-noout",
        *f"-{field}".split(),
        "-nameopt",
        "multiline",
    )
    assert done.returncode == 0, f"{path}: {done.stderr.strip()}"
    return done.stdout


def assert_robot_complete(fleet: Fleet, host: str) -> None:
    """The robot's files are all there, belong to this robot, and key, certificate and PKCS#12 agree."""
    folder = fleet.dir(host)
    ca = fleet.certs / "ca" / "robot-ca.crt"
    for name in ROBOT_FILES:
        assert (folder / name).is_file(), f"{folder / name} is missing"
    for stem, usage, common_name in (
        ("client", "TLS Web Client Authentication", host),
        ("codesign", "Code Signing", f"{host} code signing"),
    ):
        verified = openssl("verify", "-CAfile", str(ca), str(folder / f"{stem}.crt"))
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert usage in cert_field(folder / f"{stem}.crt", "ext extendedKeyUsage")
        assert re.search(
            rf"commonName\s+=\s+{re.escape(common_name)}$",
            cert_field(folder / f"{stem}.crt", "subject"),
            re.M,
        )
        crt = public_key(folder / f"{stem}.crt", "crt")
        assert public_key(folder / f"{stem}.key", "key") == crt, (
            f"{folder}/{stem}.key does not match its certificate"
        )
        assert public_key(folder / f"{stem}.p12", "p12") == crt, (
            f"{folder}/{stem}.p12 holds another certificate"
        )
        assert public_key(folder / f"{stem}.pem", "crt") == crt, (
            f"{folder}/{stem}.pem starts with another certificate"
        )


def assert_clear_failure(output: str) -> None:
    """A failed run says what went wrong in words: no Python traceback, a message on every failed task."""
    assert "Traceback (most recent call last)" not in output, output[-4000:]
    for line in output.splitlines():
        if line.startswith("fatal:") or "FAILED!" in line:
            assert '"msg"' in line, f"failure without a message: {line[:500]}"


# ServiceNow records, read from the double with the Table API.


def table(snow: SnowInstance, path: str, fields: str) -> list[dict[str, t.Any]]:
    status, _headers, body = snow.call(
        "GET",
        f"{path}?sysparm_fields={fields}&sysparm_limit=10000&sysparm_exclude_reference_link=true",
    )
    assert status == 200, body
    return list(body["result"])


def assert_no_duplicates(snow: SnowInstance, fleet: Fleet) -> None:
    """One CA record per CA, and every user mapping once: no record written twice by a retry."""
    ca_names = collections.Counter(
        r["name"] for r in table(snow, CA_RECORD_PATH, "name,active")
    )
    assert ca_names and all(count == 1 for count in ca_names.values()), ca_names
    mappings = table(snow, USER_CERT_PATH, "name,user,active")
    names = collections.Counter(r["name"] for r in mappings)
    assert all(count == 1 for count in names.values()), {
        n: c for n, c in names.items() if c > 1
    }
    for host, spec in fleet.robots.items():
        active = [
            m for m in fleet.mappings(spec["robot_snow_user"]) if m["active"] == "true"
        ]
        assert active, f"{host}: no active mapping for {spec['robot_snow_user']}"


def assert_logs_in(snow: SnowInstance, fleet: Fleet) -> None:
    """The double's mutual-TLS port accepts each robot's PKCS#12 as the robot's own user."""
    for host, spec in fleet.robots.items():
        assert (
            snow.login_with_pkcs12(fleet.dir(host) / "client.p12", PASSPHRASE)
            == spec["robot_snow_user"]
        )


# The faults.


def test_sigkill_mid_issuance_leaves_no_corrupt_file_and_next_run_converges(
    tmp_path: Path,
) -> None:
    fleet = Fleet.numbered(tmp_path, None, 6, "kill")
    proc = start_provision(fleet, tmp_path, forks=2)
    try:
        started = wait_for(lambda: complete_robots(fleet.certs) >= 2, proc)
        if started:
            os.killpg(proc.pid, signal.SIGKILL)
    finally:
        output, _errors = proc.communicate(timeout=60)
    assert started, f"the run ended before it could be killed:\n{output[-3000:]}"
    assert proc.returncode == -signal.SIGKILL
    assert complete_robots(fleet.certs) < len(fleet.robots), (
        "the run finished before the kill; nothing was interrupted"
    )

    assert_sound(fleet.certs)

    again = provision(fleet, tmp_path, forks=2)
    assert again.returncode == 0, again.stdout[-4000:]
    for host in fleet.robots:
        assert_robot_complete(fleet, host)
    strays = assert_sound(fleet.certs)
    assert not strays, (
        f"temp files of the killed run are left behind: {[str(p) for p in strays]}"
    )


def test_ten_forks_into_one_folder_give_unique_serials_and_clobber_nothing(
    tmp_path: Path,
) -> None:
    fleet = Fleet.numbered(tmp_path, None, 10, "forks")
    done = provision(fleet, tmp_path, forks=10)
    assert done.returncode == 0, done.stdout[-4000:]

    serials = [cert_field(fleet.certs / "ca" / "robot-ca.crt", "serial").strip()]
    for host in fleet.robots:
        assert_robot_complete(fleet, host)
        serials += [
            cert_field(fleet.dir(host) / f"{stem}.crt", "serial").strip()
            for stem in ("client", "codesign")
        ]
    assert len(serials) == 21
    assert len(set(serials)) == len(serials), collections.Counter(serials).most_common(
        3
    )
    assert not assert_sound(fleet.certs)


def test_storms_of_429_and_503_complete_and_rerun_writes_nothing_twice(
    snow_instance_factory: t.Callable[..., SnowInstance],
    tmp_path: Path,
) -> None:
    snow = snow_instance_factory(publish_delay=0.2, plugin_delay=0.2)
    fleet = Fleet.numbered(tmp_path, snow, 2, "storm")
    snow.inject(
        status=429, count=4, path_prefix="/api/now/table", retry_after=1, every=2
    )
    snow.inject(status=503, count=4, path_prefix="/api/now", every=3)

    stormed = provision(fleet, tmp_path)
    answered = collections.Counter(r["status"] for r in snow.requests())
    assert answered[429] and answered[503], (
        f"the storm never reached the run: {answered}"
    )
    assert_clear_failure(stormed.stdout + stormed.stderr)
    assert stormed.returncode == 0, (
        f"bounded storms within the documented retries must not fail the run:\n{stormed.stdout[-4000:]}"
    )

    snow.clear_faults()
    again = provision(fleet, tmp_path)
    assert again.returncode == 0, again.stdout[-4000:]
    assert set(recap_changed(again.stdout).values()) == {0}, again.stdout[-4000:]
    assert_no_duplicates(snow, fleet)
    assert_logs_in(snow, fleet)


def test_instance_restarted_mid_run_fails_clearly_or_completes_and_rerun_converges(
    snow_instance_factory: t.Callable[..., SnowInstance],
    tmp_path: Path,
) -> None:
    snow = snow_instance_factory(publish_delay=0.2, plugin_delay=0.2)
    fleet = Fleet.numbered(tmp_path, snow, 2, "restart")
    proc = start_provision(fleet, tmp_path)
    try:
        reached = wait_for(
            lambda: any(
                r["path"].startswith(USER_CERT_PATH) and r["method"] == "POST"
                for r in snow.requests()
            ),
            proc,
        )
        if reached:
            snow.restart()
    finally:
        output, _errors = proc.communicate(timeout=240)
    assert reached, f"the run ended before the first user mapping:\n{output[-3000:]}"
    if proc.returncode != 0:
        assert_clear_failure(output)

    again = provision(fleet, tmp_path)
    assert again.returncode == 0, again.stdout[-4000:]
    for host in fleet.robots:
        assert_robot_complete(fleet, host)
    assert_no_duplicates(snow, fleet)
    assert_logs_in(snow, fleet)


# The secrets scan and the file modes, on one provision.yml run at -vvv.

PKCS12_PASSPHRASE = "P12pass-Qx7Vw3-scan"
KEY_PASSPHRASE = "KEYpass-Lm4Ty8-scan"
CA_KEY_PASSPHRASE = "CApass-Hz2Rn6-scan"


class ScannedRun(t.NamedTuple):
    fleet: Fleet
    snow: SnowInstance
    tmp_path: Path
    output: str
    secrets: dict[str, str]


@pytest.fixture(scope="module")
def scanned_run(
    snow_instance_factory: t.Callable[..., SnowInstance],
    tmp_path_factory: pytest.TempPathFactory,
) -> ScannedRun:
    tmp_path = tmp_path_factory.mktemp("scan")
    snow = snow_instance_factory(publish_delay=0.2, plugin_delay=0.2)
    fleet = Fleet.numbered(
        tmp_path,
        snow,
        3,
        "scan",
        group_vars={
            "robot_identity_pkcs12_passphrase": PKCS12_PASSPHRASE,
            "robot_identity_privatekey_passphrase": KEY_PASSPHRASE,
            "robot_identity_ca_privatekey_passphrase": CA_KEY_PASSPHRASE,
        },
    )
    instance = fleet.extra_vars()["servicenow_cba_instance"]
    # OAuth password grant: the run sends the user's password and the client secret.
    instance.update(
        client_id=snow.oauth_client_id, client_secret=snow.oauth_client_secret
    )
    done = provision(fleet, tmp_path, "-vvv", servicenow_cba_instance=instance)
    assert done.returncode == 0, done.stdout[-4000:]
    secrets = {
        "PKCS#12 passphrase": PKCS12_PASSPHRASE,
        "key passphrase": KEY_PASSPHRASE,
        "CA key passphrase": CA_KEY_PASSPHRASE,
        "client secret": snow.oauth_client_secret,
        "password": snow.admin_password,
        "Basic credentials": base64.b64encode(
            f"{snow.admin_user}:{snow.admin_password}".encode()
        ).decode(),
    }
    return ScannedRun(fleet, snow, tmp_path, done.stdout + done.stderr, secrets)


def fingerprints(data: bytes) -> list[str]:
    """Pieces of DATA as they would appear in text: base64 at every alignment, and hex."""
    middle = data[len(data) // 3 :]
    found = [base64.b64encode(middle[shift:])[4:64].decode() for shift in range(3)]
    return [*found, middle[:24].hex()]


def scanned_files(run: ScannedRun) -> list[Path]:
    """Every file the run could have written: the test folder, without the inputs and the secret files."""
    inputs = {run.fleet.inventory}
    return [
        p
        for p in run.tmp_path.rglob("*")
        if p.is_file() and p not in inputs and p.suffix not in SECRET_SUFFIXES
    ]


def test_secrets_scan_finds_no_secret_in_output_or_written_files(
    scanned_run: ScannedRun,
) -> None:
    run = scanned_run
    secret_files = [
        p
        for p in run.fleet.certs.rglob("*")
        if p.is_file() and p.suffix in SECRET_SUFFIXES
    ]
    # The CA key, and per robot two keys and two PKCS#12 files.
    assert len(secret_files) == 1 + 4 * len(run.fleet.robots), [
        str(p) for p in secret_files
    ]
    needles = dict(run.secrets)
    for path in secret_files:
        data = path.read_bytes()
        pieces = fingerprints(data)
        # The scan must be able to see a leak: the pieces are found in the file's own base64.
        assert any(piece in base64.b64encode(data).decode() for piece in pieces)
        for index, piece in enumerate(pieces):
            needles[f"bytes of {path.name} ({path.parent.name}) #{index}"] = piece
        if path.suffix == ".key":
            body = [
                line
                for line in data.decode().splitlines()
                if line and not line.startswith("-----")
            ]
            needles[f"PEM line of {path.parent.name}/{path.name}"] = body[
                len(body) // 2
            ]
        if path.suffix == ".p12":
            needles[f"base64 of {path.parent.name}/{path.name}"] = base64.b64encode(
                path.read_bytes()
            ).decode()[:64]
    patterns = {
        "private key PEM": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
        "Authorization header": re.compile(
            r"authorization['\"]?\s*[:=]\s*['\"]?\s*(basic|bearer)\s", re.I
        ),
        "API key header": re.compile(r"x-sn-apikey['\"]?\s*[:=]", re.I),
    }

    sources = {"playbook output": run.output}
    for path in scanned_files(run):
        sources[str(path.relative_to(run.tmp_path))] = path.read_bytes().decode(
            "latin-1"
        )
    assert "ESTABLISH LOCAL CONNECTION" in run.output, "the run was not verbose"
    leaks = [
        f"{what} in {where}"
        for where, text in sources.items()
        for what, needle in needles.items()
        if needle in text
    ]
    leaks += [
        f"{what} in {where}"
        for where, text in sources.items()
        for what, pattern in patterns.items()
        if pattern.search(text)
    ]
    assert not leaks, leaks[:20]


def test_instance_received_certificates_only(scanned_run: ScannedRun) -> None:
    snow = scanned_run.snow
    status, _headers, body = snow.call("GET", "/api/now/attachment?sysparm_limit=1000")
    assert status == 200, body
    attachments = body["result"]
    assert attachments, "the run attached no certificate"
    for record in attachments:
        status, _headers, content = snow.call(
            "GET", f"/api/now/attachment/{record['sys_id']}/file"
        )
        assert status == 200, content
        text = content if isinstance(content, str) else json.dumps(content)
        assert "PRIVATE KEY" not in text, (
            f"attachment {record['file_name']} holds a private key"
        )
        assert "-----BEGIN CERTIFICATE-----" in text, (
            f"attachment {record['file_name']} is not a PEM certificate"
        )
        for secret in scanned_run.secrets.values():
            assert secret not in text


def test_key_and_pkcs12_files_are_0600_in_0700_folders(scanned_run: ScannedRun) -> None:
    certs = scanned_run.fleet.certs
    secret_files = [
        p for p in certs.rglob("*") if p.is_file() and p.suffix in SECRET_SUFFIXES
    ]
    assert secret_files
    wrong = [
        f"{p}: {stat.S_IMODE(p.stat().st_mode):04o}"
        for p in secret_files
        if stat.S_IMODE(p.stat().st_mode) != 0o600
    ]
    folders = {p.parent for p in secret_files}
    wrong += [
        f"{d}/: {stat.S_IMODE(d.stat().st_mode):04o}"
        for d in sorted(folders)
        if stat.S_IMODE(d.stat().st_mode) != 0o700
    ]
    assert not wrong, wrong
    encrypted = openssl(
        "pkey", "-in", str(certs / "ca" / "robot-ca.key"), "-noout", "-passin", "pass:"
    )
    assert encrypted.returncode != 0, "the CA key was written without its passphrase"
