"""Command line of the ServiceNow test double (test code only).

    python -m tests.servicenow_double --state-dir DIR [--port 0] [--mtls-port 0] --ready-file FILE

Writes FILE (JSON) once both ports listen; SIGTERM or SIGINT stops it and removes FILE.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from .certs import ensure_server_pki
from .instance import Instance
from .server import bind, make_contexts
from .store import Store


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.servicenow_double",
        description="Local ServiceNow test double.",
    )
    parser.add_argument(
        "--state-dir",
        required=True,
        type=Path,
        help="directory for SQLite state and the server PKI",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="main HTTPS port (0: any free port)"
    )
    parser.add_argument(
        "--mtls-port", type=int, default=0, help="mutual-TLS port (0: any free port)"
    )
    parser.add_argument(
        "--ready-file",
        required=True,
        type=Path,
        help="JSON file written once listening",
    )
    parser.add_argument(
        "--plugin-delay", type=float, help="seconds a plugin activation takes (stored)"
    )
    parser.add_argument(
        "--publish-delay", type=float, help="seconds until a CA is published (stored)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    state_dir: Path = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    pki = ensure_server_pki(state_dir)
    store = Store(state_dir / "instance.sqlite")
    instance = Instance(store)
    instance.seed()
    delays = {
        k: v
        for k, v in (
            ("plugin_delay", args.plugin_delay),
            ("publish_delay", args.publish_delay),
        )
        if v is not None
    }
    if delays:
        instance.update_settings(delays)

    main_context, mtls_context = make_contexts(str(pki.cert_path), str(pki.key_path))
    servers = [
        bind(args.port, main_context, instance, "main"),
        bind(args.mtls_port, mtls_context, instance, "mtls"),
    ]
    for server in servers:
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        ).start()

    creds = instance.credentials()
    ready = {
        "url": servers[0].base_url,
        "mtls_url": servers[1].base_url,
        "host": servers[0].base_url.removeprefix("https://"),
        "ca_path": str(pki.ca_path),
        "pid": os.getpid(),
        "state_dir": str(state_dir),
        "admin": {"username": creds["admin_user"], "password": creds["admin_password"]},
        "no_sso_admin": {
            "username": creds["no_sso_user"],
            "password": creds["no_sso_password"],
        },
        "oauth": {
            "client_id": creds["oauth_client_id"],
            "client_secret": creds["oauth_client_secret"],
        },
        "api_key": creds["api_key"],
    }
    tmp = args.ready_file.with_name(args.ready_file.name + ".tmp")
    tmp.write_text(json.dumps(ready, indent=2), encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, args.ready_file)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    for server in servers:
        server.shutdown()
        server.server_close()
    store.close()
    args.ready_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except OSError as exc:
        sys.exit(f"servicenow_double: {exc}")
