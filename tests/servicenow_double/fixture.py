"""pytest fixtures that start the ServiceNow test double as a subprocess (test code only).

``snow_instance`` (module scope) is a running double on free ports in a temporary state
directory; ``snow_instance_factory`` starts further, independent ones. Both give a
``SnowInstance``: connection facts for the modules under test, helpers for the test-only
control API (request log, faults, delays, users) and the mutual-TLS login proof.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import typing as t
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
ROBOT_ROLE = "sn_rpa_fdn.rpa_robot"


class DoubleError(RuntimeError):
    """The test double did not start, or a control request failed."""


class SnowInstance:
    """A running test double. Attributes come from its ready file."""

    url: str
    mtls_url: str
    host: str
    ca_path: str
    admin_user: str
    admin_password: str
    no_sso_user: str
    no_sso_password: str
    oauth_client_id: str
    oauth_client_secret: str
    api_key: str
    pid: int

    def __init__(
        self,
        state_dir: Path,
        *,
        plugin_delay: float | None = None,
        publish_delay: float | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.ready_file = self.state_dir / "ready.json"
        self._delays = {
            "--plugin-delay": plugin_delay,
            "--publish-delay": publish_delay,
        }
        self._ports = (0, 0)
        self._proc: subprocess.Popen[bytes] | None = None

    # Life cycle.
    def start(self) -> SnowInstance:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.ready_file.unlink(missing_ok=True)
        command = [
            sys.executable,
            "-m",
            "tests.servicenow_double",
            "--state-dir",
            str(self.state_dir),
        ]
        command += [
            "--ready-file",
            str(self.ready_file),
            "--port",
            str(self._ports[0]),
            "--mtls-port",
            str(self._ports[1]),
        ]
        for flag, value in self._delays.items():
            if value is not None:
                command += [flag, str(value)]
        log = open(self.state_dir / "double.log", "ab")  # noqa: SIM115 - the child keeps writing to it
        try:
            self._proc = subprocess.Popen(
                command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ready_file.exists():
            if self._proc.poll() is not None:
                raise DoubleError(
                    f"the ServiceNow test double exited with {self._proc.returncode}; see {self.state_dir / 'double.log'}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise DoubleError(
                    f"the ServiceNow test double did not start within {START_TIMEOUT} s"
                )
            time.sleep(0.05)
        ready = json.loads(self.ready_file.read_text(encoding="utf-8"))
        self.url, self.mtls_url, self.host, self.ca_path, self.pid = (
            ready["url"],
            ready["mtls_url"],
            ready["host"],
            ready["ca_path"],
            ready["pid"],
        )
        self.admin_user, self.admin_password = (
            ready["admin"]["username"],
            ready["admin"]["password"],
        )
        self.no_sso_user, self.no_sso_password = (
            ready["no_sso_admin"]["username"],
            ready["no_sso_admin"]["password"],
        )
        self.oauth_client_id, self.oauth_client_secret = (
            ready["oauth"]["client_id"],
            ready["oauth"]["client_secret"],
        )
        self.api_key = ready["api_key"]
        self._ports = (
            int(self.url.rsplit(":", 1)[1]),
            int(self.mtls_url.rsplit(":", 1)[1]),
        )
        return self

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def restart(self) -> SnowInstance:
        """Stop and start again on the same state directory and ports: every record stays."""
        self.stop()
        return self.start()

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    # Plain HTTPS for tests and helpers.
    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_path)

    def call(
        self,
        method: str,
        path: str,
        body: t.Any = None,
        *,
        user: str | None = None,
        password: str | None = None,
        auth: bool = True,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, dict[str, str], t.Any]:
        """One request to the main port as admin (or USER; none if not AUTH): (status, headers, body)."""
        data = (
            raw
            if raw is not None
            else (json.dumps(body).encode() if body is not None else None)
        )
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if body is not None and raw is None:
            request.add_header("Content-Type", "application/json")
        if auth:
            token = (
                f"{user or self.admin_user}:{password if user else self.admin_password}"
            )
            request.add_header(
                "Authorization", "Basic " + base64.b64encode(token.encode()).decode()
            )
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(
                request, context=self.ssl_context(), timeout=30
            ) as answer:
                status, answer_headers, content = (
                    answer.status,
                    dict(answer.headers),
                    answer.read(),
                )
        except urllib.error.HTTPError as exc:
            status, answer_headers, content = exc.code, dict(exc.headers), exc.read()
        parsed: t.Any = content.decode("utf-8", "replace") if content else None
        if content and "json" in answer_headers.get("Content-Type", ""):
            parsed = json.loads(content)
        return status, answer_headers, parsed

    def _control(self, method: str, path: str, body: t.Any = None) -> t.Any:
        status, _headers, parsed = self.call(method, "/_double/" + path, body)
        if status >= 300:
            raise DoubleError(
                f"control request {method} /_double/{path} answered {status}: {parsed}"
            )
        return parsed["result"] if isinstance(parsed, dict) else None

    # Control API.
    def requests(self) -> list[dict[str, t.Any]]:
        """The request log: method, path, query, status, user, ts, port (no headers, no bodies)."""
        return list(self._control("GET", "requests"))

    def clear_requests(self) -> None:
        self._control("DELETE", "requests")

    def inject(
        self,
        status: int = 429,
        count: int | None = 1,
        path_prefix: str = "/",
        retry_after: int = 1,
        every: int = 1,
    ) -> None:
        """The next COUNT matching requests (every EVERY-th one; COUNT None: no end) answer STATUS."""
        self._control(
            "POST",
            "faults",
            {
                "status": status,
                "count": count,
                "path_prefix": path_prefix,
                "retry_after": retry_after,
                "every": every,
            },
        )

    def clear_faults(self) -> None:
        self._control("DELETE", "faults")

    def set_delays(
        self, *, plugin: float | None = None, publish: float | None = None
    ) -> dict[str, float]:
        changes = {
            k: v
            for k, v in (("plugin_delay", plugin), ("publish_delay", publish))
            if v is not None
        }
        return dict(self._control("POST", "settings", changes))

    def create_robot_users(
        self, names: list[str], roles: tuple[str, ...] = (ROBOT_ROLE,)
    ) -> dict[str, str]:
        """Create active sys_user records with ROLES; answers user_name -> sys_id."""
        created = self._control(
            "POST",
            "users",
            {"users": [{"user_name": n, "roles": list(roles)} for n in names]},
        )
        return {u["user_name"]: u["sys_id"] for u in created}

    def create_robot_user(
        self, name: str, roles: tuple[str, ...] = (ROBOT_ROLE,)
    ) -> str:
        return self.create_robot_users([name], roles)[name]

    # The mutual-TLS proof.
    def login_with(
        self,
        cert_path: str | os.PathLike[str] | None,
        key_path: str | os.PathLike[str] | None = None,
    ) -> str:
        """Log in on the mTLS port with a client certificate: the user_name, or the 401 reason."""
        context = self.ssl_context()
        if cert_path:
            context.load_cert_chain(str(cert_path), str(key_path) if key_path else None)
        host, port = self.mtls_url.removeprefix("https://").rsplit(":", 1)
        connection = http.client.HTTPSConnection(
            host, int(port), context=context, timeout=30
        )
        try:
            connection.request(
                "GET",
                "/api/now/ui/user/current_user",
                headers={"Accept": "application/json"},
            )
            answer = connection.getresponse()
            parsed = json.loads(answer.read() or b"null")
        finally:
            connection.close()
        if answer.status == 200:
            return str(parsed["result"]["user_name"])
        if answer.status == 401:
            return str(parsed["error"]["detail"])
        raise DoubleError(f"mTLS login answered {answer.status}: {parsed}")

    def login_with_pkcs12(
        self, path: str | os.PathLike[str], passphrase: str | bytes | None
    ) -> str:
        """As login_with, from a PKCS#12 file (key and certificate written to a private temp dir)."""
        secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
        key, cert, extra = pkcs12.load_key_and_certificates(
            Path(path).read_bytes(), secret
        )
        if key is None or cert is None:
            raise DoubleError(f"{path} holds no key and certificate")
        with tempfile.TemporaryDirectory(prefix="mtls-") as tmp:
            cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            chain = [cert, *extra]
            cert_file.write_bytes(
                b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
            )
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(
                    key.private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    )
                )
            return self.login_with(cert_file, key_file)


@pytest.fixture(scope="session")
def snow_instance_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., SnowInstance]]:
    """Call as snow_instance_factory(plugin_delay=..., publish_delay=...) for a fresh double."""
    started: list[SnowInstance] = []

    def _start(**delays: float | None) -> SnowInstance:
        instance = SnowInstance(tmp_path_factory.mktemp("snow"), **delays)
        started.append(instance)
        return instance.start()

    yield _start
    for instance in started:
        instance.stop()


@pytest.fixture(scope="module")
def snow_instance(snow_instance_factory: Callable[..., SnowInstance]) -> SnowInstance:
    """One running double per test module, with the default delays."""
    return snow_instance_factory()


__all__ = ("DoubleError", "SnowInstance", "snow_instance", "snow_instance_factory")
