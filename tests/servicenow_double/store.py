"""SQLite state of the ServiceNow test double: records, attachment contents, the request log.

Test code only. One connection in WAL mode behind one lock: the double serves a handful of
concurrent test clients, and a single writer keeps every multi-step change atomic.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import secrets
import sqlite3
import threading
import typing as t
from collections.abc import Iterator
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tbl TEXT NOT NULL,
    sys_id TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (tbl, sys_id)
);
CREATE TABLE IF NOT EXISTS blobs (sys_id TEXT PRIMARY KEY, content BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (token_hash TEXT PRIMARY KEY, user_sys_id TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    port TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    query TEXT NOT NULL,
    status INTEGER NOT NULL,
    user TEXT NOT NULL
);
"""

Record = dict[str, str]


def new_sys_id() -> str:
    return secrets.token_hex(16)


def stamp(when: datetime.datetime | None = None) -> str:
    return (when or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%d %H:%M:%S")


class Store:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self._depth = 0
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All changes inside commit together or not at all (re-entrant)."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if outer:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._db.execute("COMMIT")

    def _rows(self, sql: str, args: tuple[t.Any, ...] = ()) -> list[tuple[t.Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _run(self, sql: str, args: tuple[t.Any, ...] = ()) -> None:
        with self.transaction():
            self._db.execute(sql, args)

    # Records: every value a string, fields starting with "_" are internal and never served.
    def all(self, table: str) -> list[Record]:
        return [
            json.loads(r[0])
            for r in self._rows(
                "SELECT data FROM records WHERE tbl=? ORDER BY seq", (table,)
            )
        ]

    def get(self, table: str, sys_id: str) -> Record | None:
        rows = self._rows(
            "SELECT data FROM records WHERE tbl=? AND sys_id=?", (table, sys_id)
        )
        return json.loads(rows[0][0]) if rows else None

    def where(self, table: str, **equals: str) -> list[Record]:
        """Records whose fields equal the given values, found by SQLite's JSON functions."""
        conditions = "".join(" AND json_extract(data, ?) = ?" for _name in equals)
        args: list[str] = [table]
        for name, value in equals.items():
            args += [f"$.{name}", value]
        rows = self._rows(
            f"SELECT data FROM records WHERE tbl=?{conditions} ORDER BY seq",
            tuple(args),
        )
        return [json.loads(r[0]) for r in rows]

    def find(self, table: str, field: str, value: str) -> Record | None:
        found = self.where(table, **{field: value})
        return found[0] if found else None

    def insert(self, table: str, data: Record, user: str = "system") -> Record:
        now = stamp()
        record = {
            "sys_id": data.get("sys_id") or new_sys_id(),
            "sys_created_on": now,
            "sys_created_by": user,
            "sys_updated_on": now,
            "sys_updated_by": user,
            "sys_mod_count": "0",
        }
        record.update(
            {k: v for k, v in data.items() if k not in record or k == "sys_id"}
        )
        self._run(
            "INSERT INTO records (tbl, sys_id, data) VALUES (?, ?, ?)",
            (table, record["sys_id"], json.dumps(record)),
        )
        return record

    def update(
        self, table: str, sys_id: str, changes: Record, user: str = "system"
    ) -> Record:
        with self.transaction():
            record = self.get(table, sys_id)
            if record is None:
                raise KeyError(sys_id)
            record.update(changes)
            record["sys_updated_on"] = stamp()
            record["sys_updated_by"] = user
            record["sys_mod_count"] = str(int(record.get("sys_mod_count") or 0) + 1)
            self._db.execute(
                "UPDATE records SET data=? WHERE tbl=? AND sys_id=?",
                (json.dumps(record), table, sys_id),
            )
        return record

    def delete(self, table: str, sys_id: str) -> None:
        self._run("DELETE FROM records WHERE tbl=? AND sys_id=?", (table, sys_id))

    # Attachment contents.
    def put_blob(self, sys_id: str, content: bytes) -> None:
        self._run(
            "INSERT OR REPLACE INTO blobs (sys_id, content) VALUES (?, ?)",
            (sys_id, content),
        )

    def get_blob(self, sys_id: str) -> bytes | None:
        rows = self._rows("SELECT content FROM blobs WHERE sys_id=?", (sys_id,))
        return bytes(rows[0][0]) if rows else None

    def delete_blob(self, sys_id: str) -> None:
        self._run("DELETE FROM blobs WHERE sys_id=?", (sys_id,))

    # Settings and seeded credentials.
    def meta(self, key: str, default: t.Any = None) -> t.Any:
        rows = self._rows("SELECT value FROM meta WHERE key=?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def set_meta(self, key: str, value: t.Any) -> None:
        self._run(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            (key, json.dumps(value)),
        )

    # OAuth access tokens, stored as hashes.
    def add_token(self, token_hash: str, user_sys_id: str, expires: float) -> None:
        self._run(
            "INSERT INTO tokens VALUES (?, ?, ?)", (token_hash, user_sys_id, expires)
        )

    def token_user(self, token_hash: str, now: float) -> str | None:
        rows = self._rows(
            "SELECT user_sys_id FROM tokens WHERE token_hash=? AND expires>?",
            (token_hash, now),
        )
        return rows[0][0] if rows else None

    # Request log: no headers, no bodies.
    def log_request(self, entry: dict[str, t.Any]) -> None:
        self._run(
            "INSERT INTO requests (ts, port, method, path, query, status, user) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                entry["ts"],
                entry["port"],
                entry["method"],
                entry["path"],
                entry["query"],
                entry["status"],
                entry["user"],
            ),
        )

    def requests(self) -> list[dict[str, t.Any]]:
        cols = ("id", "ts", "port", "method", "path", "query", "status", "user")
        return [
            dict(zip(cols, row, strict=True))
            for row in self._rows(f"SELECT {', '.join(cols)} FROM requests ORDER BY id")
        ]

    def clear_requests(self) -> None:
        self._run("DELETE FROM requests")


__all__ = ("Record", "Store", "new_sys_id", "stamp")
