"""HTTPS front of the ServiceNow test double: the main port (Basic, OAuth, API key) and the
mutual-TLS port (client certificate), plus the test-only control API under ``/_double/``.

Test code only. Every answer carries ``Server: snow_adc``; an unexpected exception becomes a
500 error envelope for the client and a traceback on the double's stderr, never in the answer.
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import json
import re
import ssl
import sys
import time
import traceback
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from .instance import ApiError, Caller, Instance, unauthenticated

MAX_BODY = 16 * 1024 * 1024
TABLE_PATH = re.compile(r"^/api/now/table/([^/]+)(?:/([^/]+))?$")
ATTACHMENT_PATH = re.compile(r"^/api/now/attachment/([0-9a-f]{32})(/file)?$")
ACTIVATE_PATH = re.compile(r"^/api/sn_cicd/plugin/([^/]+)/activate$")
PROGRESS_PATH = re.compile(r"^/api/sn_cicd/progress/([^/]+)$")
CURRENT_USER = "/api/now/ui/user/current_user"
# Query parameters that may carry a secret are not written to the request log.
SECRET_PARAMS = {
    "password",
    "client_secret",
    "api_key",
    "access_token",
    "refresh_token",
}

Answer = tuple[int, t.Any, dict[str, str]]


class TlsServer(ThreadingHTTPServer):
    """A threading HTTP server whose TLS handshake runs in the connection's own thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, port: int, context: ssl.SSLContext, instance: Instance, name: str
    ) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.context = context
        self.instance = instance
        self.name = name
        self.base_url = f"https://127.0.0.1:{self.server_address[1]}"

    def finish_request(self, request: t.Any, client_address: t.Any) -> None:
        request.settimeout(30)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client gave up or spoke no TLS; nothing to answer
        try:
            self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]
        finally:
            tls.close()


def _accept_any_client_certificate(context: ssl.SSLContext) -> None:
    """Let the handshake finish whatever certificate the client sends.

    The standard library has no verify callback, and OpenSSL would abort the handshake for an
    unknown or expired client certificate; the double instead answers 401 with the reason. This
    installs an always-accepting callback on the context's SSL_CTX through ctypes, and checks
    first that the pointer is the SSL_CTX by reading back the verify mode it must hold.
    """
    import _ssl

    lib = ctypes.CDLL(_ssl.__file__)
    get_mode = lib.SSL_CTX_get_verify_mode
    get_mode.restype = ctypes.c_int
    get_mode.argtypes = [ctypes.c_void_p]
    ctx_ptr = ctypes.c_void_p.from_address(
        id(context) + 2 * ctypes.sizeof(ctypes.c_void_p)
    ).value
    # OpenSSL's SSL_VERIFY_PEER is 1, SSL_VERIFY_FAIL_IF_NO_PEER_CERT adds 2.
    for mode, openssl_mode in ((ssl.CERT_REQUIRED, 3), (ssl.CERT_OPTIONAL, 1)):
        context.verify_mode = mode
        if get_mode(ctx_ptr) != openssl_mode:
            raise RuntimeError(
                "cannot install the client-certificate callback on this Python build"
            )
    callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
    callback = callback_type(lambda _ok, _store: 1)
    set_verify = lib.SSL_CTX_set_verify
    set_verify.restype = None
    set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, callback_type]
    set_verify(ctx_ptr, 1, callback)
    context._double_verify_callback = callback  # type: ignore[attr-defined]  # keep it alive


def make_contexts(
    cert_path: str, key_path: str
) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    main = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    main.load_cert_chain(cert_path, key_path)
    mtls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    mtls.load_cert_chain(cert_path, key_path)
    _accept_any_client_certificate(mtls)
    return main, mtls


def _error_body(status: int, message: str, detail: str) -> t.Any:
    return {"error": {"message": message, "detail": detail}, "status": "failure"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: TlsServer

    def version_string(self) -> str:
        return "snow_adc"

    def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002 - signature of the base class
        return  # the request log in SQLite replaces the access log

    def do_GET(self) -> None:  # noqa: N802 - names fixed by BaseHTTPRequestHandler
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle()

    def do_PUT(self) -> None:  # noqa: N802
        self._handle()

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle()

    # Plumbing.
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            raise ApiError(
                413,
                "Request entity too large",
                f"the body may hold at most {MAX_BODY} bytes",
            )
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: t.Any, headers: dict[str, str]) -> None:
        if isinstance(payload, bytes):
            body = payload
        elif isinstance(payload, str):
            body = payload.encode()
        else:
            body = json.dumps(payload).encode()
        self.send_response(status)
        content_type = headers.pop("Content-Type", None) or (
            "text/plain;charset=UTF-8"
            if isinstance(payload, str)
            else "application/json;charset=UTF-8"
        )
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 204:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 204:
            self.wfile.write(body)

    def _handle(self) -> None:
        instance = self.server.instance
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        self._user = ""
        status = 500
        try:
            body = self._read_body()
            instance.tick()
            if path.startswith("/_double/") and self.server.name == "main":
                status, payload, headers = self._control(path, params, body)
            else:
                fault = instance.take_fault(path)
                status, payload, headers = (
                    self._fault(fault) if fault else self._route(path, params, body)
                )
        except ApiError as exc:
            status, headers = exc.status, dict(exc.headers)
            payload = _error_body(exc.status, exc.message, exc.detail)
            if path == "/oauth_token.do":
                payload = {"error": exc.message, "error_description": exc.detail}
        except Exception:
            traceback.print_exc(file=sys.stderr)
            self.close_connection = (
                True  # the rest of the request may still be in the stream
            )
            status, headers = 500, {}
            payload = _error_body(
                500, "Internal error of the test double", "see the double's stderr"
            )
        try:
            self._send(status, payload, headers)
        finally:
            if not path.startswith("/_double/"):
                logged = (
                    ""
                    if path == "/oauth_token.do"
                    else urlencode(
                        {k: v for k, v in params.items() if k not in SECRET_PARAMS}
                    )
                )
                instance.store.log_request(
                    {
                        "ts": time.time(),
                        "port": self.server.name,
                        "method": self.command,
                        "path": path,
                        "query": logged,
                        "status": status,
                        "user": self._user,
                    }
                )

    def _fault(self, fault: t.Any) -> Answer:
        if fault.status == 429:
            reset = int(time.time()) + fault.retry_after
            headers = {
                "Retry-After": str(fault.retry_after),
                "X-RateLimit-Limit": "100",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset),
            }
            return (
                429,
                _error_body(
                    429,
                    "Rate limit exceeded",
                    "too many requests; retry after Retry-After seconds",
                ),
                headers,
            )
        text = f"<html><body><h1>{fault.status} {self.responses.get(fault.status, ('',))[0]}</h1></body></html>"
        return fault.status, text, {"Content-Type": "text/html"}

    def _json_body(self, body: bytes) -> dict[str, t.Any]:
        if not body.strip():
            return {}
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(
                400,
                "Exception while reading request",
                f"The payload is not valid JSON: {exc}",
            ) from exc
        if not isinstance(data, dict):
            raise ApiError(
                400,
                "Exception while reading request",
                "The payload must be a JSON object",
            )
        return data

    # Authentication.
    def _authenticate(self) -> Caller:
        instance = self.server.instance
        if self.server.name == "mtls":
            der = self.connection.getpeercert(binary_form=True)  # type: ignore[attr-defined]
            user = instance.certificate_login(der)
            caller = instance._caller(user)
            if caller is None:
                raise unauthenticated("user inactive")
        else:
            caller = self._credentials_caller()
        self._user = caller.user_name
        return caller

    def _credentials_caller(self) -> Caller:
        instance = self.server.instance
        header = self.headers.get("Authorization", "")
        scheme, _space, value = header.partition(" ")
        caller = None
        if scheme.lower() == "basic":
            try:
                user, _colon, password = (
                    base64.b64decode(value.strip(), validate=True)
                    .decode()
                    .partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                raise unauthenticated() from None
            caller = instance.login_basic(user, password)
        elif scheme.lower() == "bearer":
            caller = instance.login_token(value.strip())
        elif self.headers.get("x-sn-apikey"):
            caller = instance.login_api_key(self.headers["x-sn-apikey"])
        if caller is None:
            raise unauthenticated()
        return caller

    # Routes.
    def _list_answer(
        self,
        rows: list[dict[str, t.Any]],
        total: int,
        limit: int,
        offset: int,
        params: dict[str, str],
        path: str,
    ) -> Answer:
        headers = {"X-Total-Count": str(total)}
        if offset > 0 or offset + limit < total:

            def link(start: int) -> str:
                query = urlencode(
                    {
                        **params,
                        "sysparm_offset": str(max(0, start)),
                        "sysparm_limit": str(limit),
                    }
                )
                return f"<{self.server.base_url}{path}?{query}>"

            links = [f'{link(0)};rel="first"']
            if offset > 0:
                links.append(f'{link(offset - limit)};rel="prev"')
            if offset + limit < total:
                links.append(f'{link(offset + limit)};rel="next"')
            last = ((max(total, 1) - 1) // limit) * limit if limit else 0
            links.append(f'{link(last)};rel="last"')
            headers["Link"] = ",".join(links)
        return 200, {"result": rows}, headers

    def _route(self, path: str, params: dict[str, str], body: bytes) -> Answer:
        instance = self.server.instance
        base = self.server.base_url
        method = self.command
        if path == "/adcv2/supports_tls" and method == "GET":
            return 200, "true", {}
        if (
            path == "/oauth_token.do"
            and method == "POST"
            and self.server.name == "main"
        ):
            form = dict(
                parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
            )
            return 200, instance.issue_token(form), {"Cache-Control": "no-store"}

        caller = self._authenticate()
        if path == CURRENT_USER and method == "GET":
            user = instance.store.get("sys_user", caller.sys_id) or {}
            return (
                200,
                {
                    "result": {
                        "user_name": caller.user_name,
                        "user_sys_id": caller.sys_id,
                        "user_display_name": user.get("name", ""),
                    }
                },
                {},
            )

        if match := TABLE_PATH.match(path):
            table, sys_id = match.groups()
            if sys_id is None and method == "GET":
                rows, total, limit, offset = instance.list_records(
                    caller, table, params
                )
                shown = [instance.render(r, table, params, base) for r in rows]
                return self._list_answer(shown, total, limit, offset, params, path)
            if sys_id is None and method == "POST":
                record = instance.create(caller, table, self._json_body(body))
                return (
                    201,
                    {"result": instance.render(record, table, params, base)},
                    {"Location": f"{base}/api/now/table/{table}/{record['sys_id']}"},
                )
            if sys_id and method == "GET":
                return (
                    200,
                    {
                        "result": instance.render(
                            instance.get(caller, table, sys_id), table, params, base
                        )
                    },
                    {},
                )
            if sys_id and method in ("PATCH", "PUT"):
                record = instance.update(caller, table, sys_id, self._json_body(body))
                return 200, {"result": instance.render(record, table, params, base)}, {}
            if sys_id and method == "DELETE":
                instance.delete(caller, table, sys_id)
                return 204, b"", {}

        if path == "/api/now/attachment/file" and method == "POST":
            attachment = instance.attach(
                caller, params, self.headers.get("Content-Type", ""), body
            )
            return 201, {"result": self._attachment_view(attachment)}, {}
        if path == "/api/now/attachment" and method == "GET":
            rows, total, limit, offset = instance.list_attachments(caller, params)
            return self._list_answer(
                [self._attachment_view(r) for r in rows],
                total,
                limit,
                offset,
                params,
                path,
            )
        if match := ATTACHMENT_PATH.match(path):
            sys_id, as_file = match.groups()
            if method == "GET" and as_file:
                record = instance.attachment(caller, sys_id)
                return (
                    200,
                    instance.store.get_blob(sys_id) or b"",
                    {"Content-Type": record["content_type"]},
                )
            if method == "GET":
                return (
                    200,
                    {
                        "result": self._attachment_view(
                            instance.attachment(caller, sys_id)
                        )
                    },
                    {},
                )
            if method == "DELETE" and not as_file:
                instance.delete_attachment(caller, sys_id)
                return 204, b"", {}

        if (match := ACTIVATE_PATH.match(path)) and method == "POST":
            return 200, {"result": instance.activate(caller, match.group(1), base)}, {}
        if (match := PROGRESS_PATH.match(path)) and method == "GET":
            return 200, {"result": instance.progress(caller, match.group(1), base)}, {}
        raise ApiError(
            400, "Requested URI does not represent any resource", f"{method} {path}"
        )

    def _attachment_view(self, record: dict[str, str]) -> dict[str, str]:
        view = {k: v for k, v in record.items() if not k.startswith("_")}
        view["download_link"] = (
            f"{self.server.base_url}/api/now/attachment/{record['sys_id']}/file"
        )
        return view

    # Test-only control API.
    def _control(self, path: str, params: dict[str, str], body: bytes) -> Answer:
        instance = self.server.instance
        caller = self._credentials_caller()
        if "admin" not in caller.roles:
            raise ApiError(
                403, "User Not Authorized", "the control API needs an admin user"
            )
        method = self.command
        if path == "/_double/requests" and method == "GET":
            return 200, {"result": instance.store.requests()}, {}
        if path == "/_double/requests" and method == "DELETE":
            instance.store.clear_requests()
            return 204, b"", {}
        if path == "/_double/faults" and method == "POST":
            instance.add_fault(self._json_body(body))
            return 201, {"result": [vars(f) for f in instance.faults]}, {}
        if path == "/_double/faults" and method == "GET":
            return 200, {"result": [vars(f) for f in instance.faults]}, {}
        if path == "/_double/faults" and method == "DELETE":
            instance.clear_faults()
            return 204, b"", {}
        if path == "/_double/settings" and method == "GET":
            return 200, {"result": instance.settings()}, {}
        if path == "/_double/settings" and method in ("POST", "PATCH"):
            return 200, {"result": instance.update_settings(self._json_body(body))}, {}
        if path == "/_double/users" and method == "POST":
            users = self._json_body(body).get("users", [])
            if not isinstance(users, list) or not all(
                isinstance(u, dict) and u.get("user_name") for u in users
            ):
                raise ApiError(
                    400,
                    "Invalid users",
                    'send {"users": [{"user_name": ..., "roles": [...]}]}',
                )
            created = []
            with instance.store.transaction():
                for spec in users:
                    user = instance.add_user(
                        str(spec["user_name"]),
                        spec.get("password"),
                        list(spec.get("roles", [])),
                        name=spec.get("name"),
                    )
                    created.append(
                        {"sys_id": user["sys_id"], "user_name": user["user_name"]}
                    )
            return 201, {"result": created}, {}
        raise ApiError(400, "Unknown control request", f"{method} {path}")


def bind(
    port: int, context: ssl.SSLContext, instance: Instance, name: str
) -> TlsServer:
    try:
        return TlsServer(port, context, instance, name)
    except OSError as exc:
        raise SystemExit(
            f"servicenow_double: cannot listen on 127.0.0.1:{port} ({exc}); choose another port or 0"
        ) from exc


__all__ = ("Handler", "TlsServer", "bind", "make_contexts")
