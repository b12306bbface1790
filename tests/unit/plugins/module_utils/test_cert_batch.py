"""cert_batch's backend: many identities over worker processes, checked with openssl."""

from __future__ import annotations

import os
import signal
import time
import typing as t
from pathlib import Path

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _cert_batch,
    _cert_generate,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    CertificateError,
)
from tests.helpers import LEGACY_PBE, pkcs12_encryption, sh, snapshot

PASSPHRASE = "batch-pfx-passphrase"


def _validated(
    spec: dict[str, t.Any], params: dict[str, t.Any], **rules: t.Any
) -> dict[str, t.Any]:
    result = ArgumentSpecValidator(spec, **rules).validate(params)
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


@pytest.fixture
def ca(tmp_path: Path) -> dict[str, str]:
    paths = {
        "path": str(tmp_path / "ca" / "ca.crt"),
        "privatekey_path": str(tmp_path / "ca" / "ca.key"),
    }
    params = _validated(
        _cert_generate.ARGUMENT_SPEC,
        dict(
            paths,
            purpose="ca",
            subject={"common_name": "Batch Robot CA"},
            key_type="ecdsa",
        ),
    )
    _cert_generate.run(params, check_mode=False)
    return paths


def _item(
    tmp_path: Path, ca: dict[str, str], robot: str, stem: str, purpose: str
) -> dict[str, t.Any]:
    base = tmp_path / robot / stem
    return {
        "id": f"{robot}/{stem}",
        "generate": {
            "path": f"{base}.crt",
            "privatekey_path": f"{base}.key",
            "purpose": purpose,
            "subject": {"common_name": f"{robot} {stem}"},
            "key_type": "ecdsa",
            "issuer_cert_path": ca["path"],
            "issuer_privatekey_path": ca["privatekey_path"],
        },
        "export": {
            "certificate_path": f"{base}.crt",
            "privatekey_path": f"{base}.key",
            "chain_paths": [ca["path"]],
            "pem_path": f"{base}.pem",
            "pkcs12_path": f"{base}.p12",
            "pkcs12_passphrase": PASSPHRASE,
            "pkcs12_profile": "legacy",
            "purpose": purpose,
        },
    }


def _fleet(tmp_path: Path, ca: dict[str, str], robots: int) -> list[dict[str, t.Any]]:
    return [
        _item(tmp_path, ca, f"robot{n:02d}", stem, purpose)
        for n in range(robots)
        for stem, purpose in (("client", "client_auth"), ("codesign", "code_signing"))
    ]


def _run(
    items: list[dict[str, t.Any]], *, check_mode: bool = False, **options: t.Any
) -> tuple[bool, dict[str, t.Any]]:
    params = _validated(_cert_batch.ARGUMENT_SPEC, {"items": items, **options})
    changed, result, _diff, _warnings = _cert_batch.run(params, check_mode=check_mode)
    return changed, result


def test_a_fleet_is_issued_over_two_workers_and_verifies_with_openssl(
    tmp_path: Path, ca: dict[str, str]
) -> None:
    items = _fleet(tmp_path, ca, 6)
    changed, result = _run(items, workers=2)

    assert changed and result["workers"] == 2
    assert result["failed_ids"] == [] and result["changed_ids"] == [
        i["id"] for i in items
    ]
    serials = set()
    for item in items:
        done = result["items"][item["id"]]
        assert done["export"]["thumbprint"] == done["generate"]["thumbprint"]
        serials.add(done["generate"]["serial_number"])
        base = item["export"]["pkcs12_path"][: -len(".p12")]
        purpose = "sslclient" if item["id"].endswith("client") else "any"
        check = sh(
            "openssl",
            "verify",
            "-purpose",
            purpose,
            "-CAfile",
            ca["path"],
            f"{base}.crt",
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert LEGACY_PBE in pkcs12_encryption(f"{base}.p12", PASSPHRASE)
        assert (Path(f"{base}.p12").stat().st_mode & 0o777) == 0o600
        assert (Path(f"{base}.key").stat().st_mode & 0o777) == 0o600
    assert len(serials) == len(items), "two identities got the same serial number"


def test_an_unchanged_rerun_changes_nothing(tmp_path: Path, ca: dict[str, str]) -> None:
    items = _fleet(tmp_path, ca, 4)
    _run(items, workers=2)
    before = snapshot(tmp_path)

    changed, result = _run(items, workers=2)

    assert not changed and result["changed_ids"] == []
    assert snapshot(tmp_path) == before


def test_check_mode_writes_nothing(tmp_path: Path, ca: dict[str, str]) -> None:
    items = _fleet(tmp_path, ca, 4)
    before = snapshot(tmp_path)

    changed, result = _run(items, check_mode=True, workers=2)

    assert changed and result["failed_ids"] == []
    assert snapshot(tmp_path) == before


def test_a_failing_identity_does_not_stop_the_others(
    tmp_path: Path, ca: dict[str, str]
) -> None:
    items = _fleet(tmp_path, ca, 4)
    items[2]["generate"]["issuer_cert_path"] = str(tmp_path / "missing-ca.crt")

    changed, result = _run(items, workers=2, fail_on_error=False)

    bad = items[2]["id"]
    assert result["failed_ids"] == [bad]
    message = result["items"][bad]["msg"]
    assert (
        message.startswith("generate: issuer_cert_path ")
        and "does not exist" in message
    )
    assert "\n" not in message and "Traceback" not in message
    assert not Path(items[2]["export"]["pkcs12_path"]).exists()
    assert changed
    for item in items[:2] + items[3:]:
        assert Path(item["export"]["pkcs12_path"]).exists()


def test_fail_on_error_fails_the_task_with_the_identity_named_and_keeps_what_changed(
    tmp_path: Path, ca: dict[str, str]
) -> None:
    items = _fleet(tmp_path, ca, 2)
    items[1]["export"]["pkcs12_passphrase"] = ""

    changed, result = _run(items)

    assert result["failed"] is True
    assert result["msg"].startswith(
        "item 'robot00/codesign': export: pkcs12_passphrase must not be empty"
    )
    # The other robot was issued in this run, so the failed task still reports the change.
    assert changed and "robot01/client" in result["changed_ids"]
    assert Path(items[2]["export"]["pkcs12_path"]).exists()


def test_a_small_batch_runs_in_process_and_says_so(
    tmp_path: Path, ca: dict[str, str]
) -> None:
    _changed, result = _run(_fleet(tmp_path, ca, 1), workers=8)

    assert result["workers"] == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda items: items[1].update(id=items[0]["id"]),
            r"item ids must be unique, 'robot00/client' repeats",
        ),
        (
            lambda items: items[1]["generate"].update(
                path=items[0]["generate"]["path"]
            ),
            r"items 'robot00/client' and 'robot00/codesign' both write .*client\.crt",
        ),
    ],
)
def test_conflicting_items_are_refused_before_anything_is_written(
    tmp_path: Path,
    ca: dict[str, str],
    change: t.Callable[[list[dict[str, t.Any]]], None],
    message: str,
) -> None:
    items = _fleet(tmp_path, ca, 2)
    change(items)
    before = snapshot(tmp_path)

    with pytest.raises(CertificateError, match=message):
        _run(items, workers=2)

    assert snapshot(tmp_path) == before


def test_the_item_options_are_those_of_the_two_modules(
    tmp_path: Path, ca: dict[str, str]
) -> None:
    items = _fleet(tmp_path, ca, 1)
    items[0]["generate"]["key_typo"] = "rsa"

    result = ArgumentSpecValidator(_cert_batch.ARGUMENT_SPEC).validate({"items": items})

    assert any("key_typo" in m for m in result.error_messages)
    # The modules' no_log options stay no_log inside an item, so the action plugin masks them.
    assert PASSPHRASE in result._no_log_values


def test_a_slow_robot_does_not_hold_back_the_rest_of_the_wave(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 40 robots, two identities each, over two workers; the first robot's work is slow.
    items = [
        {
            "id": f"robot{r:02d}/{kind}",
            "export": {"pkcs12_path": str(tmp_path / f"robot{r:02d}" / f"{kind}.p12")},
        }
        for r in range(40)
        for kind in ("client", "codesign")
    ]

    def record(item: dict[str, t.Any], _check_mode: bool) -> dict[str, t.Any]:
        if item["id"] == "robot00/client":
            time.sleep(1.0)
        return {"id": item["id"], "pid": os.getpid()}

    # The workers are forked after this, so they run this stand-in for the identity work.
    monkeypatch.setattr(_cert_batch, "run_item", record)
    done = _cert_batch._spread(items, 2, False)

    assert [d["id"] for d in done] == [i["id"] for i in items]
    by_robot: dict[str, set[int]] = {}
    for d in done:
        by_robot.setdefault(d["id"].split("/")[0], set()).add(d["pid"])
    # A robot's pair stays in one process (one folder, one writer).
    assert all(len(pids) == 1 for pids in by_robot.values())
    slow = next(iter(by_robot["robot00"]))
    # The other worker took the chunks the slow one could not: far more than half of the wave.
    assert sum(1 for d in done if d["pid"] != slow) > 60


def test_worker_count() -> None:
    assert _cert_batch.worker_count(3, 2) == 2
    assert _cert_batch.worker_count(1, 50) == 1
    assert _cert_batch.worker_count(0, 50) >= 1
    with pytest.raises(CertificateError, match="workers must be 0"):
        _cert_batch.worker_count(-1, 5)


def test_a_worker_that_dies_ends_the_task_with_an_error_instead_of_hanging(
    tmp_path: Path, ca: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Enough identities that the surviving worker's results overflow the pipe buffer, so it cannot
    # just finish: only a working SIGTERM stops it.
    items = _fleet(tmp_path, ca, 60)
    real = _cert_batch.run_item

    def dies_on_robot02(item: dict[str, t.Any], check_mode: bool) -> dict[str, t.Any]:
        if item["id"].startswith("robot02/"):
            os._exit(9)  # as if the kernel killed the worker
        return real(item, check_mode)

    def timed_out(*_args: t.Any) -> t.NoReturn:
        raise AssertionError("the batch hung after one of its workers died")

    # The workers are forked from this process, so they run the patched function, and they would
    # inherit a SIGTERM handler that does not stop them, as Ansible's worker process has one.
    monkeypatch.setattr(_cert_batch, "run_item", dies_on_robot02)
    previous = signal.signal(signal.SIGTERM, lambda *_args: None)
    signal.signal(signal.SIGALRM, timed_out)
    signal.alarm(30)
    try:
        with pytest.raises(
            CertificateError, match="worker process of the batch ended unexpectedly"
        ):
            _run(items, workers=2)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGTERM, previous)
