# This file is internal to the snowrpa.robot_certs collection and may change in any release.
"""The one HTTP client of the ServiceNow modules.

It builds requests through ansible-core's ``ansible.module_utils.urls.Request``, authenticates
(Basic, OAuth password or client-credentials grant, API key), retries 429 and 502/503/504 with
bounded backoff, follows ``Link`` pagination, turns failures into one-line ``ServiceNowError``
messages without headers or secrets, and is the single write layer: in check mode every write is
recorded as "would change" and never sent.
"""

from __future__ import annotations

import email.utils
import json
import re
import socket
import ssl
import time
import typing as t
import urllib.parse
from http.client import HTTPException
from urllib.error import HTTPError, URLError

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.urls import Request

from ansible_collections.snowrpa.robot_certs.plugins.module_utils import (
    _snow_tables as tables,
)
from ansible_collections.snowrpa.robot_certs.plugins.module_utils._errors import (
    ServiceNowError,
)

INSTANCE_ARGSPEC: dict[str, t.Any] = {
    "type": "dict",
    "apply_defaults": True,
    "options": {
        "host": {"type": "str", "fallback": (env_fallback, ["SN_HOST"])},
        "username": {"type": "str", "fallback": (env_fallback, ["SN_USERNAME"])},
        "password": {
            "type": "str",
            "no_log": True,
            "fallback": (env_fallback, ["SN_PASSWORD"]),
        },
        "client_id": {"type": "str", "fallback": (env_fallback, ["SN_CLIENT_ID"])},
        "client_secret": {
            "type": "str",
            "no_log": True,
            "fallback": (env_fallback, ["SN_CLIENT_SECRET"]),
        },
        "grant_type": {"type": "str", "choices": ["password", "client_credentials"]},
        "api_key": {
            "type": "str",
            "no_log": True,
            "fallback": (env_fallback, ["SN_API_KEY"]),
        },
        "timeout": {"type": "float", "default": 30.0},
        "validate_certs": {"type": "bool", "default": True},
        "ca_path": {"type": "path"},
    },
}

# Transient answers worth another attempt; 400/401/403/404 are final by design.
RETRY_STATUSES = frozenset((429, 502, 503, 504))
MAX_ATTEMPTS = 8
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
RETRY_AFTER_CAP = 60.0
# Large pages keep a fleet-sized look-up to one request per query chunk.
PAGE_SIZE = 1000
# Encoded IN lists are kept short enough for proxies that cap request lines near 8 KiB [infer].
QUERY_CHUNK_CHARS = 6000

# Tables that exist only once com.glide.auth.mutual is active.
CHECK_MODE_MISSING_OK = frozenset((tables.CA_TABLE, tables.USER_CERT_TABLE))
_SECRET_KEYS = ("password", "client_secret", "api_key")
_LINK_RE = re.compile(r'<([^>]+)>\s*;\s*rel="?([A-Za-z]+)"?')


class ServiceNowRequestError(ServiceNowError):
    """A request answered with an error status; carries only non-secret facts."""

    def __init__(
        self,
        message: str,
        *,
        method: str,
        path: str,
        status: int | None,
        sn_message: str = "",
    ) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.status = status
        self.sn_message = sn_message


class Response(t.NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> t.Any:
        if not self.body:
            return None
        return json.loads(self.body.decode("utf-8"))


def _hint(status: int, path: str) -> str:
    if status == 401:
        if path == "/oauth_token.do":
            return "check instance.client_id and instance.client_secret (and username/password for the password grant)"
        return "check the instance credentials (instance.username and instance.password, the OAuth client or instance.api_key)"
    if status == 403:
        if tables.CA_TABLE in path or tables.USER_CERT_TABLE in path:
            return f"certificate tables need the roles {tables.ROLE_ADMIN} and {tables.ROLE_SSO_CONFIG_ADMIN}; grant them to the calling user"
        return "the calling user lacks a role for this request"
    if status == 404 and (tables.CA_TABLE in path or tables.USER_CERT_TABLE in path):
        return f"the table exists only once the plugin {tables.MUTUAL_AUTH_PLUGIN} is active; run snowrpa.robot_certs.snow_plugin first"
    if status == 429:
        return "the instance kept rate-limiting after every retry; try again later or lower the request rate"
    if status in (502, 503, 504):
        return "the instance stayed unavailable through every retry; run the task again once it answers"
    if status >= 500:
        return (
            "the instance failed while handling the request; check its system log (System Logs > Errors) "
            "for the cause, then run the task again"
        )
    return ""


class SnowClient:
    """A connection to one instance for the life of one module run."""

    def __init__(
        self,
        instance: dict[str, t.Any],
        *,
        check_mode: bool = False,
        sleep: t.Callable[[float], None] = time.sleep,
    ) -> None:
        self.check_mode = check_mode
        self.would_change: list[str] = []
        self.request_count = 0
        self.last_headers: dict[str, str] = {}
        self.missing_tables: set[str] = set()
        self.sleep = sleep
        self._token: str | None = None
        self._secrets = [str(instance[k]) for k in _SECRET_KEYS if instance.get(k)]
        self.base_url, self.host = self._base_url(instance.get("host"))
        self.username: str | None = instance.get("username")
        self._instance = dict(instance)
        self._auth = self._auth_mode(self._instance)
        self._http = Request(
            timeout=instance.get("timeout") or 30.0,
            validate_certs=instance.get("validate_certs", True),
            ca_path=instance.get("ca_path"),
            http_agent="snowrpa.robot_certs",
            follow_redirects="none",
            use_netrc=False,
        )

    # ----------------------------------------------------------------- set-up

    @staticmethod
    def _base_url(host: t.Any) -> tuple[str, str]:
        if not host:
            raise ServiceNowError(
                "no instance host: set instance.host (or SN_HOST), for example myco.service-now.com"
            )
        text = str(host).strip().rstrip("/")
        if "://" not in text:
            text = "https://" + text
        parts = urllib.parse.urlsplit(text)
        if parts.scheme != "https":
            raise ServiceNowError(
                f"instance.host {host!r} must use https: credentials are never sent in clear text"
            )
        if not parts.hostname or parts.path not in ("", "/"):
            raise ServiceNowError(
                f"instance.host {host!r} is not a host name; give it as myco.service-now.com or https://myco.service-now.com"
            )
        return f"https://{parts.netloc}", parts.hostname

    @staticmethod
    def _auth_mode(instance: dict[str, t.Any]) -> str:
        if instance.get("api_key"):
            return "api_key"
        if instance.get("client_id") or instance.get("client_secret"):
            if not (instance.get("client_id") and instance.get("client_secret")):
                raise ServiceNowError(
                    "OAuth needs both instance.client_id and instance.client_secret (or SN_CLIENT_ID and SN_CLIENT_SECRET)"
                )
            grant = instance.get("grant_type") or (
                "password" if instance.get("username") else "client_credentials"
            )
            if grant == "password" and not (
                instance.get("username") and instance.get("password")
            ):
                raise ServiceNowError(
                    "the OAuth password grant needs instance.username and instance.password as well"
                )
            instance["grant_type"] = grant
            return "oauth"
        if instance.get("username") and instance.get("password"):
            return "basic"
        raise ServiceNowError(
            "no instance credentials: give instance.username and instance.password, instance.client_id and "
            "instance.client_secret, or instance.api_key (or the SN_* environment variables)"
        )

    # ------------------------------------------------------------- transport

    def _redact(self, text: str) -> str:
        for secret in self._secrets + ([self._token] if self._token else []):
            if secret:
                text = text.replace(secret, "********")
        return text

    def _auth_headers(self) -> dict[str, str]:
        if self._auth == "api_key":
            return {"x-sn-apikey": str(self._instance["api_key"])}
        if self._auth == "oauth":
            return {"Authorization": f"Bearer {self._oauth_token()}"}
        return {}

    def _oauth_token(self) -> str:
        if self._token:
            return self._token
        form = {
            "grant_type": self._instance["grant_type"],
            "client_id": self._instance["client_id"],
            "client_secret": self._instance["client_secret"],
        }
        if form["grant_type"] == "password":
            form.update(
                username=self._instance["username"], password=self._instance["password"]
            )
        response = self._send(
            "POST",
            "/oauth_token.do",
            body=urllib.parse.urlencode(form).encode("ascii"),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            authenticate=False,
        )
        try:
            token = response.json()["access_token"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ServiceNowError(
                "POST /oauth_token.do answered without an access_token; check the OAuth application on the instance"
            ) from exc
        self._token = str(token)
        return self._token

    def _retry_wait(self, status: int, headers: dict[str, str], attempt: int) -> float:
        backoff = min(BACKOFF_CAP, BACKOFF_BASE * (2**attempt))
        if status != 429:
            return backoff
        value = headers.get("retry-after", "").strip()
        if not value:
            return backoff
        try:
            seconds = float(value)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value) if value else None
            seconds = when.timestamp() - time.time() if when else backoff
        return min(RETRY_AFTER_CAP, max(0.0, seconds))

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, t.Any] | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        authenticate: bool = True,
    ) -> Response:
        """Send one request (with retries) and return the response; raise ServiceNowError on failure."""
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
        refreshed = False
        for attempt in range(MAX_ATTEMPTS):
            request_headers = dict(headers or {})
            if authenticate:
                request_headers.update(self._auth_headers())
            basic = authenticate and self._auth == "basic"
            self.request_count += 1
            try:
                raw = self._http.open(
                    method,
                    url,
                    data=body,
                    headers=request_headers,
                    url_username=self._instance.get("username") if basic else None,
                    url_password=self._instance.get("password") if basic else None,
                    force_basic_auth=basic,
                )
                with raw:
                    data = raw.read()
                    self.last_headers = {k.lower(): v for k, v in raw.headers.items()}
                    return Response(raw.status, self.last_headers, data)
            except HTTPError as exc:
                response_headers = {
                    k.lower(): v for k, v in (exc.headers or {}).items()
                }
                self.last_headers = response_headers
                try:
                    data = exc.read()
                except (OSError, HTTPException):
                    data = b""
                finally:
                    exc.close()
                if exc.code in RETRY_STATUSES and attempt + 1 < MAX_ATTEMPTS:
                    self.sleep(self._retry_wait(exc.code, response_headers, attempt))
                    continue
                if (
                    exc.code == 401
                    and self._auth == "oauth"
                    and authenticate
                    and self._token
                    and not refreshed
                ):
                    # An access token can expire during a long poll; a fresh one is fetched once, never more.
                    self._token, refreshed = None, True
                    continue
                raise self._status_error(method, path, exc.code, data) from None
            except URLError as exc:
                raise self._connection_error(method, path, exc.reason) from None
            except (
                ssl.SSLError,
                TimeoutError,
                ConnectionError,
                HTTPException,
                OSError,
            ) as exc:
                raise self._connection_error(method, path, exc) from None
        raise AssertionError(
            "unreachable: the retry loop always returns or raises"
        )  # pragma: no cover

    def _status_error(
        self, method: str, path: str, status: int, data: bytes
    ) -> ServiceNowRequestError:
        sn_message = ""
        try:
            payload = json.loads(data.decode("utf-8")) if data else None
        except (ValueError, UnicodeDecodeError):
            payload = None
        if isinstance(payload, dict):
            error = payload.get("error")
            if isinstance(error, dict):
                sn_message = str(error.get("message") or "")
                detail = error.get("detail")
                if detail and detail != sn_message:
                    sn_message = (
                        f"{sn_message} ({detail})" if sn_message else str(detail)
                    )
            elif isinstance(error, str):
                # The OAuth endpoint answers {"error": "access_denied", "error_description": ...}.
                sn_message = error
                if payload.get("error_description"):
                    sn_message += f" ({payload['error_description']})"
        sn_message = self._redact(" ".join(sn_message.split()))
        message = f"{method} {path} failed with HTTP {status}"
        if sn_message:
            message += f": {sn_message}"
        hint = _hint(status, path)
        if hint:
            message += f"; {hint}"
        return ServiceNowRequestError(
            message, method=method, path=path, status=status, sn_message=sn_message
        )

    def _connection_error(
        self, method: str, path: str, reason: t.Any
    ) -> ServiceNowRequestError:
        text = self._redact(" ".join(str(reason).split()))
        if (
            isinstance(reason, ssl.SSLCertVerificationError)
            or "CERTIFICATE_VERIFY_FAILED" in text
        ):
            message = (
                f"{method} {path}: TLS verification of {self.host} failed ({text}); set instance.ca_path to the CA "
                "bundle that issued the instance's certificate"
            )
        elif isinstance(reason, (socket.timeout, TimeoutError)) or "timed out" in text:
            message = f"{method} {path}: {self.host} did not answer within {self._http.timeout} s; check instance.host and instance.timeout"
        else:
            message = f"{method} {path}: cannot reach {self.base_url} ({text}); check instance.host and the network path to it"
        return ServiceNowRequestError(message, method=method, path=path, status=None)

    # ----------------------------------------------------------------- reads

    def get(self, path: str, query: dict[str, t.Any] | None = None) -> Response:
        return self._send(
            "GET", path, query=query, headers={"Accept": "application/json"}
        )

    def get_json(self, path: str, query: dict[str, t.Any] | None = None) -> t.Any:
        response = self.get(path, query)
        try:
            payload = response.json()
        except ValueError as exc:
            raise ServiceNowError(
                f"GET {path} answered with a body that is not JSON; is {self.host} a ServiceNow instance?"
            ) from exc
        if not isinstance(payload, dict) or "result" not in payload:
            raise ServiceNowError(
                f"GET {path} answered without a result envelope; is {self.host} a ServiceNow instance?"
            )
        return payload["result"]

    def list_records(
        self,
        table: str,
        *,
        query: str = "",
        fields: t.Iterable[str] = (),
        page_size: int = PAGE_SIZE,
        path: str | None = None,
    ) -> list[dict[str, t.Any]]:
        """Every record matching QUERY, following the Link header page by page."""
        names = tables.check_fields(table, fields)
        path = path or f"/api/now/table/{table}"
        params: dict[str, t.Any] = {"sysparm_limit": page_size, "sysparm_offset": 0}
        if query:
            params["sysparm_query"] = query
        if names:
            params["sysparm_fields"] = ",".join(names)
        if path.startswith("/api/now/table/"):
            params["sysparm_exclude_reference_link"] = "true"
        records: list[dict[str, t.Any]] = []
        seen_offsets = set()
        while True:
            try:
                response = self.get(path, params)
            except ServiceNowRequestError as exc:
                # In check mode a table that an earlier task would have created (the plugin's) reads as empty.
                if not (
                    self.check_mode
                    and exc.status == 404
                    and table in CHECK_MODE_MISSING_OK
                ):
                    raise
                self.missing_tables.add(table)
                return records
            try:
                payload = response.json()
                page = payload["result"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ServiceNowError(
                    f"GET {path} answered without a result list; is {self.host} a ServiceNow instance?"
                ) from exc
            if not isinstance(page, list):
                raise ServiceNowError(
                    f"GET {path} answered a {type(page).__name__} where a list of records was expected"
                )
            records.extend(page)
            next_params = self._next_page(response.headers.get("link", ""), path)
            if next_params is None or not page:
                return records
            offset = next_params.get("sysparm_offset")
            if offset in seen_offsets:
                return records
            seen_offsets.add(offset)
            params = next_params

    @staticmethod
    def _next_page(link: str, path: str) -> dict[str, t.Any] | None:
        for url, rel in _LINK_RE.findall(link):
            if rel.lower() != "next":
                continue
            parts = urllib.parse.urlsplit(url)
            # Only the query is taken from the link, so credentials never go to another host or path.
            if parts.path and parts.path != path:
                return None
            return dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        return None

    def list_in(
        self,
        table: str,
        field: str,
        values: t.Iterable[str],
        *,
        fields: t.Iterable[str] = (),
        extra: str = "",
        path: str | None = None,
    ) -> list[dict[str, t.Any]]:
        """Records whose FIELD is one of VALUES, in as few requests as the query length allows."""
        records: list[dict[str, t.Any]] = []
        for chunk in tables.chunk_values(values, QUERY_CHUNK_CHARS):
            query = tables.join_and(tables.condition(table, field, "IN", chunk), extra)
            records.extend(
                self.list_records(table, query=query, fields=fields, path=path)
            )
        return records

    def list_attachments(
        self, table_name: str, sys_ids: t.Iterable[str]
    ) -> list[dict[str, t.Any]]:
        """Attachment records of the records SYS_IDS of TABLE_NAME."""
        extra = tables.condition(tables.ATTACHMENT, "table_name", "=", table_name)
        return self.list_in(
            tables.ATTACHMENT,
            "table_sys_id",
            sys_ids,
            fields=(
                "sys_id",
                "file_name",
                "table_name",
                "table_sys_id",
                "content_type",
                "size_bytes",
                "hash",
            ),
            extra=extra,
            path="/api/now/attachment",
        )

    def attachment_content(self, sys_id: str) -> bytes:
        return self._send(
            "GET", f"/api/now/attachment/{sys_id}/file", headers={"Accept": "*/*"}
        ).body

    # ---------------------------------------------------------------- writes

    def _write(
        self,
        method: str,
        path: str,
        *,
        payload: t.Any = None,
        body: bytes | None = None,
        content_type: str = "application/json",
        query: dict[str, t.Any] | None = None,
        placeholder: t.Any = None,
    ) -> t.Any:
        """The only place a write is sent; in check mode it is recorded instead."""
        if self.check_mode:
            self.would_change.append(f"{method} {path}")
            return placeholder
        headers = {"Accept": "application/json"}
        if payload is not None:
            body = json.dumps(payload).encode("utf-8")
        if body is not None:
            headers["Content-Type"] = content_type
        response = self._send(
            method,
            path,
            query=query,
            body=body if body is not None else b"" if method == "POST" else None,
            headers=headers,
        )
        if not response.body:
            return None
        try:
            return response.json().get("result")
        except (ValueError, AttributeError) as exc:
            raise ServiceNowError(
                f"{method} {path} answered with a body that is not a JSON result envelope"
            ) from exc

    def create(self, table: str, record: dict[str, t.Any]) -> dict[str, t.Any]:
        tables.check_fields(table, record)
        return self._write(
            "POST", f"/api/now/table/{table}", payload=record, placeholder=dict(record)
        ) or dict(record)

    def update(
        self, table: str, sys_id: str, changes: dict[str, t.Any]
    ) -> dict[str, t.Any]:
        tables.check_fields(table, changes)
        return (
            self._write(
                "PATCH",
                f"/api/now/table/{table}/{sys_id}",
                payload=changes,
                placeholder=dict(changes, sys_id=sys_id),
            )
            or {}
        )

    def delete(self, table: str, sys_id: str) -> None:
        self._write("DELETE", f"/api/now/table/{table}/{sys_id}")

    def attach(
        self, table: str, sys_id: str, file_name: str, content: bytes, content_type: str
    ) -> dict[str, t.Any]:
        query = {"table_name": table, "table_sys_id": sys_id, "file_name": file_name}
        placeholder = {
            "sys_id": "",
            "table_name": table,
            "table_sys_id": sys_id,
            "file_name": file_name,
        }
        result = self._write(
            "POST",
            "/api/now/attachment/file",
            body=content,
            content_type=content_type,
            query=query,
            placeholder=placeholder,
        )
        return result or placeholder

    def delete_attachment(self, sys_id: str) -> None:
        self._write("DELETE", f"/api/now/attachment/{sys_id}")

    def post(self, path: str, placeholder: t.Any = None) -> t.Any:
        """An action endpoint that takes an empty body (CI/CD plugin activation)."""
        return self._write("POST", path, placeholder=placeholder)


__all__ = (
    "INSTANCE_ARGSPEC",
    "RETRY_STATUSES",
    "MAX_ATTEMPTS",
    "PAGE_SIZE",
    "QUERY_CHUNK_CHARS",
    "Response",
    "ServiceNowRequestError",
    "SnowClient",
)
