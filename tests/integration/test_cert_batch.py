"""cert_batch through its action plugin in real ansible-playbook runs."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_playbook
from tests.helpers import sh, snapshot

PLAYBOOK = Path(__file__).parent / "playbooks" / "certs" / "batch.yml"
CA_PASSPHRASE = "batch-ca-Passphrase-7731"
PFX_PASSPHRASE = "batch-pfx-Passphrase-5519"


def _vars(out: Path, **more: object) -> dict[str, object]:
    return {
        "out_dir": str(out),
        "ca_passphrase": CA_PASSPHRASE,
        "pfx_passphrase": PFX_PASSPHRASE,
        **more,
    }


def test_a_batch_issues_every_robot_and_hides_its_secrets(tmp_path: Path) -> None:
    out = tmp_path / "pki"
    run = run_playbook(
        PLAYBOOK, tmp_path=tmp_path, extra_vars=_vars(out), verbosity=3, diff=True
    )

    assert run.rc == 0, run.stdout[-3000:]
    batch = next(
        r for r in run.results if r["action"] == "snowrpa.robot_certs.cert_batch"
    )
    assert batch["status"] == "ok" and batch["result"]["changed"] is True
    assert sorted(batch["result"]["changed_ids"]) == [
        "robot01",
        "robot02",
        "robot03",
        "robot04",
    ]
    for robot in ("robot01", "robot02", "robot03", "robot04"):
        verified = sh(
            "openssl",
            "verify",
            "-purpose",
            "sslclient",
            "-CAfile",
            str(out / "ca" / "ca.crt"),
            str(out / robot / "client.crt"),
        )
        assert verified.returncode == 0, verified.stderr
    for secret in (CA_PASSPHRASE, PFX_PASSPHRASE):
        assert secret not in run.stdout and secret not in run.stderr

    again = run_playbook(PLAYBOOK, tmp_path=tmp_path, extra_vars=_vars(out))
    assert again.rc == 0
    assert [
        r["status"]
        for r in again.results
        if r["action"] == "snowrpa.robot_certs.cert_batch"
    ] == ["ok"]


def test_a_broken_identity_fails_the_task_in_one_line_and_the_others_are_issued(
    tmp_path: Path,
) -> None:
    out = tmp_path / "pki"
    run = run_playbook(
        PLAYBOOK, tmp_path=tmp_path, extra_vars=_vars(out, break_one=True)
    )

    assert run.rc != 0
    failed = next(r for r in run.results if r["status"] == "failed")
    message = failed["result"]["msg"]
    assert message.startswith("item 'robot03': generate: ") and "passphrase" in message
    assert "\n" not in message and "wrong-ca-passphrase" not in run.stdout
    assert not (out / "robot03" / "client.p12").exists()
    assert (out / "robot04" / "client.p12").exists()


def test_check_mode_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "pki"
    assert run_playbook(PLAYBOOK, tmp_path=tmp_path, extra_vars=_vars(out)).rc == 0
    (out / "robot02" / "client.crt").unlink()
    before = snapshot(out)

    run = run_playbook(PLAYBOOK, tmp_path=tmp_path, extra_vars=_vars(out), check=True)

    assert run.rc == 0, run.stdout[-2000:]
    assert snapshot(out) == before
