"""What the ServiceNow test double does, independent of HTTP: users and roles, the Table and
Attachment APIs, CI/CD plugin activation, certificate records and the mutual-TLS login decision.

Test code only. Every state change goes through Store; slow instance work (plugin activation,
publishing a CA to the load balancer) is modelled by due times that ``tick()`` settles at the
start of every request, so the double needs no background threads.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
import secrets
import threading
import time
import typing as t
from dataclasses import dataclass, field

from cryptography import x509

from . import certs, query, schema
from .store import Record, Store, new_sys_id

SYS_ID = re.compile(r"^[0-9a-f]{32}$")
DEFAULT_LIMIT = 10000
TOKEN_LIFETIME = 1800
PROGRESS_TABLE = "_cicd_progress"  # internal: never reachable through the Table API
ROBOT_ROLE = "sn_rpa_fdn.rpa_robot"
SEEDED_ROLES = ("admin", "sso_config_admin", "sn_cicd.sys_ci_automation", ROBOT_ROLE)
# Fields the instance computes from the attached PEM; a client cannot write them.
COMPUTED = ("publish_status", "subject", "issuer", "valid_from", "valid_to")
STATUS_LABELS = {
    "0": "Pending",
    "1": "Running",
    "2": "Successful",
    "3": "Failed",
    "4": "Canceled",
}


class ApiError(Exception):
    """An answer other than success: status, error.message, error.detail, extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        detail: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.headers = headers or {}


@dataclass
class Caller:
    sys_id: str
    user_name: str
    roles: set[str] = field(default_factory=set)


@dataclass
class Fault:
    status: int
    path_prefix: str
    remaining: int | None  # None: no end
    every: int
    retry_after: int
    seen: int = 0


def _hash_password(password: str, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 1000).hex()
    return f"{salt}${digest}"


def _password_ok(password: str, stored: str) -> bool:
    salt = stored.partition("$")[0]
    return bool(stored) and hmac.compare_digest(_hash_password(password, salt), stored)


def unauthenticated(detail: str = "Required to provide Auth information") -> ApiError:
    return ApiError(
        401,
        "User Not Authenticated",
        detail,
        {"WWW-Authenticate": 'Basic realm="Service-now"'},
    )


class Instance:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.faults: list[Fault] = []
        self._fault_lock = threading.Lock()
        self._pem_cache: dict[str, list[x509.Certificate] | certs.PemError] = {}

    # Seeding and settings.
    def seed(self) -> None:
        if self.store.meta("seeded"):
            return
        with self.store.transaction():
            for table in schema.BASE_TABLES:
                self._create_table(table)
            roles = {
                name: self.store.insert("sys_user_role", {"name": name})["sys_id"]
                for name in SEEDED_ROLES
            }
            credentials = {
                "admin_user": "admin",
                "admin_password": secrets.token_urlsafe(12),
                "no_sso_user": "cert_admin_no_sso",
                "no_sso_password": secrets.token_urlsafe(12),
                "oauth_client_id": secrets.token_hex(16),
                "oauth_client_secret": secrets.token_urlsafe(16),
                "api_key": secrets.token_hex(16),
            }
            self.add_user(
                "admin",
                credentials["admin_password"],
                ["admin", "sso_config_admin", "sn_cicd.sys_ci_automation"],
                roles,
            )
            self.add_user(
                "cert_admin_no_sso", credentials["no_sso_password"], ["admin"], roles
            )
            for name, value, kind in (
                ("glide.authenticate.mutual.enabled", "true", "true|false"),
                ("glide.cometd.websocket.enabled", "true", "true|false"),
                ("sn_rpa_fdn.instance_authentication", "basic", "string"),
                ("sn_rpa_fdn.code_signing_required", "false", "true|false"),
            ):
                self.store.insert(
                    "sys_properties", {"name": name, "value": value, "type": kind}
                )
            for plugin_id, name, active in (
                (schema.MUTUAL_AUTH_PLUGIN, "Mutual Authentication", "inactive"),
                ("sn_rpa_fdn", "RPA Hub", "active"),
            ):
                self.store.insert(
                    "v_plugin",
                    {
                        "id": plugin_id,
                        "name": name,
                        "active": active,
                        "version": "1.0.0",
                    },
                )
            self.store.set_meta("credentials", credentials)
            self.store.set_meta("settings", {"plugin_delay": 1.0, "publish_delay": 0.5})
            self.store.set_meta("seeded", True)

    def credentials(self) -> dict[str, str]:
        return dict(self.store.meta("credentials"))

    def settings(self) -> dict[str, float]:
        return dict(self.store.meta("settings"))

    def update_settings(self, changes: dict[str, t.Any]) -> dict[str, float]:
        current = self.settings()
        for key in ("plugin_delay", "publish_delay"):
            if key in changes:
                try:
                    current[key] = max(0.0, float(changes[key]))
                except (TypeError, ValueError) as exc:
                    raise ApiError(
                        400,
                        f"Invalid setting {key}: {changes[key]!r}",
                        "give a number of seconds",
                    ) from exc
        self.store.set_meta("settings", current)
        return current

    def _create_table(self, table: str) -> None:
        self.store.insert("sys_db_object", {"name": table, "label": table})
        for row in schema.dictionary_rows(table):
            self.store.insert(row.pop("_table"), row)

    def add_user(
        self,
        user_name: str,
        password: str | None,
        role_names: list[str],
        role_ids: dict[str, str] | None = None,
        name: str | None = None,
    ) -> Record:
        """Create a sys_user with roles (the seeding shortcut; tests may use the Table API instead)."""
        with self.store.transaction():
            if self.store.find("sys_user", "user_name", user_name):
                raise ApiError(
                    400, f"User {user_name} already exists", "choose another user_name"
                )
            data = {"user_name": user_name, "name": name or user_name, "active": "true"}
            if password:
                data["_password_hash"] = _hash_password(password)
            user = self.store.insert("sys_user", data)
            for role in role_names:
                role_id = (role_ids or {}).get(role) or (
                    self.store.find("sys_user_role", "name", role) or {}
                ).get("sys_id")
                if role_id is None:
                    raise ApiError(
                        400, f"Unknown role {role}", "create it in sys_user_role first"
                    )
                self.store.insert(
                    "sys_user_has_role",
                    {"user": user["sys_id"], "role": role_id, "state": "active"},
                )
        return user

    # Authentication.
    def roles_of(self, user_sys_id: str) -> set[str]:
        names = set()
        for link in self.store.where("sys_user_has_role", user=user_sys_id):
            role = self.store.get("sys_user_role", link.get("role", ""))
            if role:
                names.add(role["name"])
        return names

    def _caller(self, user: Record | None) -> Caller | None:
        if user is None or user.get("active") != "true":
            return None
        return Caller(user["sys_id"], user["user_name"], self.roles_of(user["sys_id"]))

    def login_basic(self, user_name: str, password: str) -> Caller | None:
        user = self.store.find("sys_user", "user_name", user_name)
        if user is None or not _password_ok(password, user.get("_password_hash", "")):
            return None
        return self._caller(user)

    def login_token(self, token: str) -> Caller | None:
        user_id = self.store.token_user(
            hashlib.sha256(token.encode()).hexdigest(), time.time()
        )
        return self._caller(self.store.get("sys_user", user_id)) if user_id else None

    def login_api_key(self, key: str) -> Caller | None:
        if not hmac.compare_digest(
            key.encode(), self.credentials()["api_key"].encode()
        ):
            return None
        return self._caller(self.store.find("sys_user", "user_name", "admin"))

    def issue_token(self, form: dict[str, str]) -> dict[str, t.Any]:
        """OAuth 2 token endpoint; raises ApiError with an OAuth error body on refusal."""
        creds = self.credentials()
        denied = ApiError(401, "access_denied", "access_denied")
        client_ok = hmac.compare_digest(
            form.get("client_id", "").encode(), creds["oauth_client_id"].encode()
        ) and hmac.compare_digest(
            form.get("client_secret", "").encode(),
            creds["oauth_client_secret"].encode(),
        )
        grant = form.get("grant_type", "")
        if grant not in ("password", "client_credentials"):
            raise ApiError(
                400, "unsupported_grant_type", f"grant_type {grant!r} is not supported"
            )
        if not client_ok:
            raise denied
        caller = (
            self.login_basic(form.get("username", ""), form.get("password", ""))
            if grant == "password"
            else self._caller(self.store.find("sys_user", "user_name", "admin"))
        )
        if caller is None:
            raise denied
        token = secrets.token_urlsafe(32)
        self.store.add_token(
            hashlib.sha256(token.encode()).hexdigest(),
            caller.sys_id,
            time.time() + TOKEN_LIFETIME,
        )
        return {
            "access_token": token,
            "refresh_token": secrets.token_urlsafe(32),
            "scope": "useraccount",
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME - 1,
        }

    # Slow instance work, settled lazily.
    def tick(self) -> None:
        now = time.time()
        with self.store.transaction():
            for progress in self.store.all(PROGRESS_TABLE):
                if progress["done"] == "false" and now >= float(
                    progress["started"]
                ) + float(progress["duration"]):
                    if not progress["error"]:
                        self._activate_now(progress["plugin_id"])
                    self.store.update(
                        PROGRESS_TABLE, progress["sys_id"], {"done": "true"}
                    )
            if self.table_exists("sys_ca_certificate"):
                for record in self.store.all("sys_ca_certificate"):
                    due = record.get("_publish_due")
                    if (
                        record.get("publish_status") == "pending"
                        and due
                        and now >= float(due)
                    ):
                        self.store.update(
                            "sys_ca_certificate",
                            record["sys_id"],
                            {"publish_status": "exists", "_publish_due": ""},
                        )

    def _activate_now(self, plugin_id: str) -> None:
        plugin = self.store.find("v_plugin", "id", plugin_id)
        if plugin is None or plugin["active"] == "active":
            return
        self.store.update("v_plugin", plugin["sys_id"], {"active": "active"})
        if plugin_id == schema.MUTUAL_AUTH_PLUGIN:
            for table in schema.CERT_TABLES:
                if not self.table_exists(table):
                    self._create_table(table)

    # Access rules.
    def table_exists(self, table: str) -> bool:
        return (
            table in schema.TABLES
            and self.store.find("sys_db_object", "name", table) is not None
        )

    def _require_table(self, caller: Caller, table: str) -> None:
        if not self.table_exists(table):
            raise ApiError(404, f"Invalid table {table}", "")
        if "admin" not in caller.roles:
            raise ApiError(
                403, "User Not Authorized", f"access to {table} requires role admin"
            )
        if table in schema.SSO_TABLES and "sso_config_admin" not in caller.roles:
            raise ApiError(
                403,
                "User Not Authorized",
                f"access to {table} requires role sso_config_admin besides admin",
            )

    def _resolve(self, table: str, sys_id: str) -> Record | None:
        return self.store.get(table, sys_id) if table in schema.TABLES else None

    def render(
        self, record: Record, table: str, params: dict[str, str], base_url: str
    ) -> dict[str, t.Any]:
        fields = [
            f.strip() for f in params.get("sysparm_fields", "").split(",") if f.strip()
        ] or None
        display = params.get("sysparm_display_value", "false").lower()
        return query.render(
            record,
            table,
            fields=fields,
            display=display if display in ("true", "all") else "false",
            exclude_links=params.get("sysparm_exclude_reference_link", "false").lower()
            == "true",
            base_url=base_url,
            resolve=self._resolve,
        )

    # Table API.
    def list_records(
        self, caller: Caller, table: str, params: dict[str, str]
    ) -> tuple[list[Record], int, int, int]:
        self._require_table(caller, table)
        parsed = query.parse(params.get("sysparm_query", ""), table)
        chosen = query.select(self.store.all(table), table, parsed, self._resolve)
        limit = _int_param(params, "sysparm_limit", DEFAULT_LIMIT)
        offset = _int_param(params, "sysparm_offset", 0)
        return chosen[offset : offset + limit], len(chosen), limit, offset

    def get(self, caller: Caller, table: str, sys_id: str) -> Record:
        self._require_table(caller, table)
        record = self.store.get(table, sys_id)
        if record is None:
            raise ApiError(
                404,
                "No Record found",
                "Record doesn't exist or ACL restricts the record retrieval",
            )
        return record

    def _coerce(self, table: str, body: dict[str, t.Any]) -> Record:
        out: Record = {}
        kinds = schema.TABLES[table]
        for name, value in body.items():
            kind = kinds.get(name)
            if kind is None or (table in schema.SSO_TABLES and name in COMPUTED):
                continue  # unknown and computed fields are ignored, as on a real instance
            if isinstance(value, dict):
                value = value.get("value", "")
            text = "" if value is None else str(value)
            if kind == schema.BOOLEAN:
                out[name] = "true" if text.lower() in ("true", "1") else "false"
            elif kind == schema.PASSWORD:
                out["_password_hash"] = _hash_password(text) if text else ""
            elif kind.startswith("reference:") and text and not SYS_ID.match(text):
                out[name] = self._reference_by_name(kind.split(":", 1)[1], text)
            else:
                out[name] = text
        return out

    def _reference_by_name(self, table: str, text: str) -> str:
        keys = {schema.DISPLAY_FIELD.get(table), schema.UNIQUE_FIELD.get(table)} - {
            None
        }
        found = next(
            (
                r
                for r in self.store.all(table)
                if any(r.get(k) == text for k in keys if k)
            ),
            None,
        )
        return found["sys_id"] if found else text

    def _check_unique(self, table: str, data: Record, sys_id: str) -> None:
        unique = schema.UNIQUE_FIELD.get(table)
        if unique and unique in data:
            clash = self.store.find(table, unique, data[unique])
            if clash and clash["sys_id"] != sys_id:
                raise ApiError(
                    403,
                    "Operation Failed",
                    f"{table}.{unique} {data[unique]!r} already exists",
                )

    def create(self, caller: Caller, table: str, body: dict[str, t.Any]) -> Record:
        self._require_table(caller, table)
        sys_id = str(body.get("sys_id") or new_sys_id())
        if not SYS_ID.match(sys_id):
            raise ApiError(
                400,
                f"Invalid sys_id {sys_id}",
                "a sys_id is 32 lower-case hexadecimal digits",
            )
        with self.store.transaction():
            if self.store.get(table, sys_id):
                raise ApiError(
                    403,
                    "Operation Failed",
                    f"a {table} record with sys_id {sys_id} already exists",
                )
            data = {
                **schema.DEFAULTS.get(table, {}),
                **self._coerce(table, body),
                "sys_id": sys_id,
            }
            self._check_unique(table, data, sys_id)
            attachment = self._latest_attachment(table, sys_id)
            if attachment and table in schema.SSO_TABLES:
                data.update(
                    self._certificate_fields(
                        table, self.store.get_blob(attachment["sys_id"]) or b""
                    )
                )
            return self.store.insert(table, data, caller.user_name)

    def update(
        self, caller: Caller, table: str, sys_id: str, body: dict[str, t.Any]
    ) -> Record:
        self.get(caller, table, sys_id)
        changes = self._coerce(table, body)
        with self.store.transaction():
            self._check_unique(table, changes, sys_id)
            return self.store.update(table, sys_id, changes, caller.user_name)

    def delete(self, caller: Caller, table: str, sys_id: str) -> None:
        self.get(caller, table, sys_id)
        with self.store.transaction():
            for attachment in self._attachments_of(table, sys_id):
                self._drop_attachment(attachment["sys_id"])
            self.store.delete(table, sys_id)

    # Attachment API.
    def _attachments_of(self, table: str, sys_id: str) -> list[Record]:
        return self.store.where("sys_attachment", table_name=table, table_sys_id=sys_id)

    def _latest_attachment(self, table: str, sys_id: str) -> Record | None:
        found = self._attachments_of(table, sys_id)
        return found[-1] if found else None

    def _drop_attachment(self, sys_id: str) -> None:
        self.store.delete("sys_attachment", sys_id)
        self.store.delete_blob(sys_id)

    def attach(
        self, caller: Caller, params: dict[str, str], content_type: str, content: bytes
    ) -> Record:
        if not content_type:
            raise ApiError(
                400,
                "Content-Type header is mandatory",
                "send the file's media type, e.g. application/x-pem-file",
            )
        table, sys_id, file_name = (
            params.get(k, "") for k in ("table_name", "table_sys_id", "file_name")
        )
        if not (table and sys_id and file_name):
            raise ApiError(
                400,
                "Missing parameter",
                "table_name, table_sys_id and file_name are all required",
            )
        self._require_table(caller, table)
        with self.store.transaction():
            record = self.store.get(table, sys_id)
            changes = (
                self._certificate_fields(table, content)
                if record and table in schema.SSO_TABLES
                else None
            )
            attachment = self.store.insert(
                "sys_attachment",
                {
                    "file_name": file_name,
                    "table_name": table,
                    "table_sys_id": sys_id,
                    "content_type": content_type,
                    "size_bytes": str(len(content)),
                    "hash": hashlib.sha256(content).hexdigest(),
                },
                caller.user_name,
            )
            self.store.put_blob(attachment["sys_id"], content)
            if changes:
                self.store.update(table, sys_id, changes, caller.user_name)
        return attachment

    def attachment(self, caller: Caller, sys_id: str) -> Record:
        record = self.store.get("sys_attachment", sys_id)
        if record is None:
            raise ApiError(
                404,
                "No Record found",
                "Record doesn't exist or ACL restricts the record retrieval",
            )
        self._require_table(caller, record["table_name"])
        return record

    def list_attachments(
        self, caller: Caller, params: dict[str, str]
    ) -> tuple[list[Record], int, int, int]:
        if "admin" not in caller.roles:
            raise ApiError(
                403, "User Not Authorized", "listing attachments requires role admin"
            )
        parsed = query.parse(params.get("sysparm_query", ""), "sys_attachment")
        chosen = query.select(
            self.store.all("sys_attachment"), "sys_attachment", parsed, self._resolve
        )
        visible = [
            a
            for a in chosen
            if a["table_name"] not in schema.SSO_TABLES
            or "sso_config_admin" in caller.roles
        ]
        limit = _int_param(params, "sysparm_limit", DEFAULT_LIMIT)
        offset = _int_param(params, "sysparm_offset", 0)
        return visible[offset : offset + limit], len(visible), limit, offset

    def delete_attachment(self, caller: Caller, sys_id: str) -> None:
        self.attachment(caller, sys_id)
        with self.store.transaction():
            self._drop_attachment(sys_id)

    # Certificates.
    def _pem(self, content: bytes) -> list[x509.Certificate]:
        key = hashlib.sha256(content).hexdigest()
        if key not in self._pem_cache:
            try:
                self._pem_cache[key] = certs.parse_pem_bundle(content)
            except certs.PemError as exc:
                self._pem_cache[key] = exc
        found = self._pem_cache[key]
        if isinstance(found, certs.PemError):
            raise found
        return found

    def _certificate_fields(self, table: str, content: bytes) -> Record:
        """Fields a certificate record takes from its PEM; refuses an unacceptable user mapping."""
        if table == "sys_ca_certificate":
            try:
                first = self._pem(content)[0]
            except certs.PemError:
                return {
                    "publish_status": "failed",
                    "_publish_due": "",
                    **dict.fromkeys(schema.CERT_FIELDS, ""),
                }
            due = time.time() + self.settings()["publish_delay"]
            return {
                "publish_status": "pending",
                "_publish_due": repr(due),
                **certs.describe(first),
            }
        if table != "sys_user_certificate":
            return {}
        try:
            leaf = self._pem(content)[0]
        except certs.PemError as exc:
            raise ApiError(400, f"Certificate not accepted: {exc}", str(exc)) from exc
        published, pending = self.ca_certificates()
        problem = certs.chain_problem(leaf, published, pending)
        if problem:
            subject = leaf.subject.rfc4514_string()
            raise ApiError(
                400, f"Certificate not accepted: {problem} ({subject})", problem
            )
        return {**certs.describe(leaf), "_fingerprint": certs.fingerprint(leaf)}

    def ca_certificates(self) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
        """Certificates of active CA records: (published, not yet published)."""
        published: list[x509.Certificate] = []
        pending: list[x509.Certificate] = []
        if not self.table_exists("sys_ca_certificate"):
            return published, pending
        for record in self.store.all("sys_ca_certificate"):
            attachment = self._latest_attachment("sys_ca_certificate", record["sys_id"])
            if record.get("active") != "true" or attachment is None:
                continue
            try:
                found = self._pem(self.store.get_blob(attachment["sys_id"]) or b"")
            except certs.PemError:
                continue
            (published if record.get("publish_status") == "exists" else pending).extend(
                found
            )
        return published, pending

    def certificate_login(self, der: bytes | None) -> Record:
        """The sys_user a client certificate logs in as; ApiError 401 with the reason otherwise."""
        prop = self.store.find(
            "sys_properties", "name", "glide.authenticate.mutual.enabled"
        )
        if prop is not None and prop.get("value") != "true":
            raise unauthenticated("mutual authentication disabled")
        if not der:
            raise unauthenticated("no client certificate")
        leaf = x509.load_der_x509_certificate(der)
        published, pending = self.ca_certificates()
        problem = certs.chain_problem(
            leaf, published, pending, datetime.datetime.now(datetime.UTC)
        )
        if problem:
            raise unauthenticated(problem)
        mine = certs.fingerprint(leaf)
        mappings = (
            [
                m
                for m in self.store.all("sys_user_certificate")
                if m.get("_fingerprint") == mine
            ]
            if self.table_exists("sys_user_certificate")
            else []
        )
        if not mappings:
            raise unauthenticated("certificate not mapped")
        active = [m for m in mappings if m.get("active") == "true"]
        if not active:
            raise unauthenticated("mapping inactive")
        user = self.store.get("sys_user", active[0].get("user", ""))
        if user is None or user.get("active") != "true":
            raise unauthenticated("user inactive")
        return user

    # CI/CD API.
    def activate(
        self, caller: Caller, plugin_id: str, base_url: str
    ) -> dict[str, t.Any]:
        if not caller.roles & {"admin", "sn_cicd.sys_ci_automation"}:
            raise ApiError(
                403,
                "User Not Authorized",
                "plugin activation requires role admin or sn_cicd.sys_ci_automation",
            )
        plugin = self.store.find("v_plugin", "id", plugin_id)
        error = (
            "" if plugin else f"Plugin {plugin_id} is not available on this instance"
        )
        already = plugin is not None and plugin["active"] == "active"
        progress = self.store.insert(
            PROGRESS_TABLE,
            {
                "plugin_id": plugin_id,
                "started": repr(time.time()),
                "duration": "0"
                if already or error
                else repr(self.settings()["plugin_delay"]),
                "error": error,
                "done": "false",
            },
        )
        return self.progress(caller, progress["sys_id"], base_url)

    def progress(
        self, caller: Caller, progress_id: str, base_url: str
    ) -> dict[str, t.Any]:
        if not caller.roles & {"admin", "sn_cicd.sys_ci_automation"}:
            raise ApiError(
                403,
                "User Not Authorized",
                "reading CI/CD progress requires role admin or sn_cicd.sys_ci_automation",
            )
        progress = self.store.get(PROGRESS_TABLE, progress_id)
        if progress is None:
            raise ApiError(404, "No Record found", f"no progress record {progress_id}")
        duration = float(progress["duration"])
        elapsed = time.time() - float(progress["started"])
        if elapsed >= duration:
            status, percent = ("3", 100) if progress["error"] else ("2", 100)
        else:
            status, percent = (
                ("0", 0)
                if elapsed < duration / 4
                else ("1", int(100 * elapsed / duration))
            )
        return {
            "links": {
                "progress": {
                    "id": progress_id,
                    "url": f"{base_url}/api/sn_cicd/progress/{progress_id}",
                },
            },
            "status": status,
            "status_label": STATUS_LABELS[status],
            "status_message": progress["error"]
            or ("Plugin activated" if status == "2" else "Activating plugin"),
            "status_detail": "",
            "error": progress["error"],
            "percent_complete": percent,
        }

    # Fault injection (in memory: a restart clears it).
    def add_fault(self, spec: dict[str, t.Any]) -> Fault:
        try:
            status = int(spec.get("status", 429))
            count = spec.get("count", 1)
            fault = Fault(
                status=status,
                path_prefix=str(spec.get("path_prefix", "/")),
                remaining=None if count is None else int(count),
                every=max(1, int(spec.get("every", 1))),
                retry_after=int(spec.get("retry_after", 1)),
            )
        except (TypeError, ValueError) as exc:
            raise ApiError(
                400,
                "Invalid fault",
                "status, count, every and retry_after are integers",
            ) from exc
        if status not in (429, 500, 502, 503, 504):
            raise ApiError(
                400, f"Invalid fault status {status}", "use 429, 500, 502, 503 or 504"
            )
        with self._fault_lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._fault_lock:
            self.faults.clear()

    def take_fault(self, path: str) -> Fault | None:
        with self._fault_lock:
            for fault in self.faults:
                if not path.startswith(fault.path_prefix) or fault.remaining == 0:
                    continue
                fault.seen += 1
                if fault.seen % fault.every:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
            return None


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    try:
        value = int(params.get(name, default))
    except ValueError:
        return default
    return value if value >= 0 else default


__all__ = ("ApiError", "Caller", "Fault", "Instance", "ROBOT_ROLE", "unauthenticated")
