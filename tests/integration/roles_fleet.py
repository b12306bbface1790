"""Test helpers for the roles and playbooks: a small hostless fleet against the ServiceNow double.

A ``Fleet`` writes an inventory of robots without a Windows host (as the demo does), creates their
ServiceNow users on a running test double, and runs the collection's playbooks against both with
the ``playbook`` fixture of tests/conftest.py. Checks read the double's tables and request log and
the files on disk with openssl, never the roles' own reports.
"""

from __future__ import annotations

import json
import re
import subprocess
import typing as t
from pathlib import Path

import yaml

from tests.servicenow_double.fixture import SnowInstance

REPO = Path(__file__).resolve().parents[2]

PLAYBOOKS = REPO / "playbooks"
PASSPHRASE = "fleet-test-passphrase"
WRITES = ("POST", "PATCH", "PUT", "DELETE")
USER_CERT_PATH = "/api/now/table/sys_user_certificate"


def recap_changed(stdout: str) -> dict[str, int]:
    """changed=N per host from the PLAY RECAP of ansible-playbook's output."""
    recap = stdout[stdout.rindex("PLAY RECAP") :]
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", recap, re.M)
    }


def openssl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", *args], capture_output=True, text=True, input=stdin, check=False
    )


def pkcs12_info(path: Path) -> str:
    """What `openssl pkcs12 -info` says about the file's encryption (its stderr lists the PBEs)."""
    done = openssl(
        "pkcs12", "-info", "-noout", "-in", str(path), "-passin", f"pass:{PASSPHRASE}"
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


class Fleet:
    """Hostless robots robot01..robotNN mapped to ServiceNow users fleet.robotNN."""

    def __init__(
        self,
        tmp_path: Path,
        snow: SnowInstance | None,
        robots: dict[str, dict[str, t.Any]],
        *,
        group_vars: dict[str, t.Any] | None = None,
        create_users: bool = True,
    ) -> None:
        self.tmp_path = tmp_path
        self.snow = snow
        self.robots = robots
        self.certs = tmp_path / "robot-certs"
        self.inventory = tmp_path / "inventory.yml"
        tmp_path.mkdir(parents=True, exist_ok=True)
        variables = {
            "robot_windows_host": False,
            "ansible_connection": "local",
            "robot_identity_pkcs12_passphrase": PASSPHRASE,
            "robot_identity_output_dir": str(self.certs),
            "robot_identity_subject": {"organization_name": "Fleet Test"},
        }
        variables.update(group_vars or {})
        self.inventory.write_text(
            yaml.safe_dump({"robots": {"hosts": robots, "vars": variables}}),
            encoding="utf-8",
        )
        if snow and create_users:
            users = [
                v["robot_snow_user"] for v in robots.values() if "robot_snow_user" in v
            ]
            snow.create_robot_users(users)

    @classmethod
    def numbered(
        cls,
        tmp_path: Path,
        snow: SnowInstance | None,
        count: int,
        prefix: str,
        builds: list[int | None] | None = None,
        **kwargs: t.Any,
    ) -> Fleet:
        robots: dict[str, dict[str, t.Any]] = {}
        for index in range(1, count + 1):
            host = f"robot{index:02d}"
            robots[host] = {"robot_snow_user": f"{prefix}.{host}"}
            build = (builds or [None] * count)[index - 1]
            if build is not None:
                robots[host]["robot_os_build"] = build
        return cls(tmp_path, snow, robots, **kwargs)

    def extra_vars(self, **more: t.Any) -> dict[str, t.Any]:
        extra: dict[str, t.Any] = {}
        if self.snow:
            extra["servicenow_cba_instance"] = {
                "host": self.snow.host,
                "username": self.snow.admin_user,
                "password": self.snow.admin_password,
                "ca_path": self.snow.ca_path,
            }
            extra["servicenow_cba_plugin_poll_interval"] = 0.5
        else:
            extra["robot_certs_servicenow"] = False
        extra.update(more)
        return extra

    def run(
        self,
        playbook_fixture: t.Callable[..., t.Any],
        name: str,
        *,
        check: bool = False,
        **more: t.Any,
    ) -> t.Any:
        return playbook_fixture(
            PLAYBOOKS / name,
            inventory=self.inventory,
            extra_vars=self.extra_vars(**more),
            check=check,
        )

    def dir(self, host: str) -> Path:
        return self.certs / host

    def mappings(self, user: str) -> list[dict[str, t.Any]]:
        """The user's sys_user_certificate records, read from the double with the Table API."""
        assert self.snow is not None
        status, _headers, body = self.snow.call(
            "GET",
            f"{USER_CERT_PATH}?sysparm_query=user.user_name={user}"
            "&sysparm_fields=sys_id,name,active&sysparm_exclude_reference_link=true",
        )
        assert status == 200, body
        return list(body["result"])


def thumbprint(cert_path: Path) -> str:
    done = openssl("x509", "-in", str(cert_path), "-noout", "-fingerprint", "-sha1")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split("=", 1)[1].replace(":", "").upper()


def json_dump(value: t.Any) -> str:
    return json.dumps(value, indent=1, default=str)


__all__ = (
    "Fleet",
    "PASSPHRASE",
    "PLAYBOOKS",
    "REPO",
    "USER_CERT_PATH",
    "WRITES",
    "json_dump",
    "openssl",
    "pkcs12_info",
    "recap_changed",
    "thumbprint",
)
