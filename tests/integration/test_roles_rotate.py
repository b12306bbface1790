"""rotate.yml: certificates inside the window are renewed without a gap in ServiceNow.

The fleet is provisioned with short-lived certificates (20 days, renewed only inside 5 days),
then rotate.yml renews everything expiring within 30 days. The double's request log shows every
new mapping created before the first old one is deleted, and the logins prove the switch.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from roles_fleet import (
    PASSPHRASE,
    USER_CERT_PATH,
    Fleet,
    recap_changed,
    thumbprint,
)

from tests.servicenow_double.fixture import SnowInstance
from tests.unit.plugins.module_utils.pki_fixtures import age_certificate

# Playbook runs against the ServiceNow double: seconds each, a minute on a busy machine.
pytestmark = pytest.mark.slow

SHORT_LIVED = {"robot_identity_valid_days": 60, "robot_identity_renew_before_days": 5}
# Provisioned certificates are re-signed as if issued this many days ago, so they expire in 15
# days: inside rotate.yml's 30-day window, while a renewed one (60 days) is well outside it.
AGE_DAYS = 45


def _age_fleet(fleet: Fleet) -> None:
    ca_cert = fleet.certs / "ca" / "robot-ca.crt"
    ca_key = serialization.load_pem_private_key(
        (fleet.certs / "ca" / "robot-ca.key").read_bytes(), None
    )
    for host in fleet.robots:
        for name in ("client.crt", "codesign.crt"):
            age_certificate(fleet.dir(host) / name, ca_cert, ca_key, AGE_DAYS)  # type: ignore[arg-type]


def _batches(run: t.Any) -> list[dict[str, t.Any]]:
    """The batched snow_user_cert results of the map step and of the retire step, in order."""
    return [
        r
        for r in run.results
        if r["action"] == "snowrpa.robot_certs.snow_user_cert"
        and "Map the client certificates of all robots" in r["task"]
    ]


def test_rotate_maps_the_new_certificate_before_retiring_the_old(
    playbook: t.Callable[..., t.Any],
    tmp_path: Path,
    snow_instance: SnowInstance,
) -> None:
    fleet = Fleet.numbered(tmp_path, snow_instance, 2, "rot", group_vars=SHORT_LIVED)
    provision = fleet.run(playbook, "provision.yml")
    assert provision.rc == 0, provision.stdout[-3000:]
    users = {h: v["robot_snow_user"] for h, v in fleet.robots.items()}
    old_thumbprints = {h: thumbprint(fleet.dir(h) / "client.crt") for h in fleet.robots}
    old_keys = {}
    for host in fleet.robots:
        (tmp_path / f"{host}-old.crt").write_bytes(
            (fleet.dir(host) / "client.crt").read_bytes()
        )
        old_keys[host] = (fleet.dir(host) / "client.key").read_bytes()
    old_ids = {h: [m["sys_id"] for m in fleet.mappings(u)] for h, u in users.items()}
    assert all(len(ids) == 1 for ids in old_ids.values())
    _age_fleet(fleet)
    snow_instance.clear_requests()

    rotate = fleet.run(playbook, "rotate.yml", rotate_within_days=30)

    assert rotate.rc == 0, rotate.stdout[-3000:]
    log = snow_instance.requests()
    created = [
        i
        for i, r in enumerate(log)
        if r["method"] == "POST" and r["path"] == USER_CERT_PATH and r["status"] == 201
    ]
    deleted = [
        i
        for i, r in enumerate(log)
        if r["method"] == "DELETE"
        and r["path"].startswith(USER_CERT_PATH + "/")
        and r["path"].rsplit("/", 1)[1] in {x for ids in old_ids.values() for x in ids}
    ]
    assert len(created) == 2, log
    assert len(deleted) == 2, log
    assert max(created) < min(deleted), (
        "an old mapping was retired before every new one was active"
    )
    # The map step keeps the old mappings and reports them; the retire step, after the Windows
    # stage, removes exactly those.
    mapped, retired = _batches(rotate)
    assert mapped["result"]["removed"] == []
    old = {x for ids in old_ids.values() for x in ids}
    assert {m["sys_id"] for m in mapped["result"]["other_mappings"]} == old
    assert {m["sys_id"] for m in retired["result"]["removed"]} == old
    windows = max(
        i
        for i, r in enumerate(rotate.results)
        if r["task"]
        == "Install the new certificates on the robots and remove the superseded ones"
    )
    assert rotate.results.index(retired) > windows

    for host, user in users.items():
        new = thumbprint(fleet.dir(host) / "client.crt")
        assert new != old_thumbprints[host]
        records = fleet.mappings(user)
        assert [m["active"] for m in records] == ["true"]
        assert records[0]["sys_id"] not in old_ids[host]
        assert records[0]["name"].endswith(new[:8])
        assert (
            snow_instance.login_with_pkcs12(fleet.dir(host) / "client.p12", PASSPHRASE)
            == user
        )
        # The old certificate is no longer mapped: the instance refuses it. The key was kept on
        # renewal, so the old certificate still pairs with the current key file.
        refused = snow_instance.login_with(
            tmp_path / f"{host}-old.crt", fleet.dir(host) / "client.key"
        )
        assert refused != user
        assert (fleet.dir(host) / "client.key").read_bytes() == old_keys[host]

    again = fleet.run(playbook, "rotate.yml", rotate_within_days=10)
    assert again.rc == 0, again.stdout[-3000:]
    assert set(recap_changed(again.stdout).values()) == {0}
    # Nothing left to retire: the retire step sends nothing.
    assert [b["status"] for b in _batches(again)] == ["ok", "skipped"]
    assert "robot01: nothing expires within 10 days" in again.stdout
    assert "robot01: renewed client_auth, code_signing" in rotate.stdout


def test_deactivated_mappings_are_not_retired_again_but_remove_still_deletes_them(
    playbook: t.Callable[..., t.Any],
    tmp_path: Path,
    snow_instance: SnowInstance,
) -> None:
    fleet = Fleet.numbered(tmp_path, snow_instance, 1, "deact", group_vars=SHORT_LIVED)
    user = fleet.robots["robot01"]["robot_snow_user"]
    assert fleet.run(playbook, "provision.yml").rc == 0
    _age_fleet(fleet)

    rotate = fleet.run(
        playbook,
        "rotate.yml",
        rotate_within_days=30,
        servicenow_cba_retire="deactivate",
    )
    assert rotate.rc == 0, rotate.stdout[-3000:]
    assert sorted(m["active"] for m in fleet.mappings(user)) == ["false", "true"]

    # Only an inactive mapping is left besides the current one: deactivate has nothing to do.
    snow_instance.clear_requests()
    kept = fleet.run(playbook, "provision.yml", servicenow_cba_retire="deactivate")
    assert kept.rc == 0, kept.stdout[-3000:]
    assert [b["status"] for b in _batches(kept)] == ["ok", "skipped"]
    assert not [r for r in snow_instance.requests() if r["method"] != "GET"]

    # remove deletes inactive mappings too, so the retire step runs and deletes it.
    removed = fleet.run(playbook, "provision.yml", servicenow_cba_retire="remove")
    assert removed.rc == 0, removed.stdout[-3000:]
    retired = _batches(removed)[1]
    assert retired["status"] == "ok" and retired["result"]["changed"] is True
    assert [m["active"] for m in retired["result"]["removed"]] == [False]
    assert [m["active"] for m in fleet.mappings(user)] == ["true"]
