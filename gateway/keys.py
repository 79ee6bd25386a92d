"""API keys: stored hashed in SQLite (WAL), managed with `gateway keys ...`.

Only the sha256 of a key is stored; the key itself is shown once, at creation. Roles: `user`
calls /v1; `admin` also calls /admin/*, reads /metrics and /ready's detail and gets the detail
headers; `metrics` reads /metrics and /ready's detail only (a scrape token that cannot call
/v1). Serving opens an existing store only (`KeyStore(path, create=False)`): a missing file
is a configuration error there, not an empty store.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import uuid
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from gateway.access import KeyCensus
from model_files.private_db import connect_private, create_private

Role = Literal["user", "admin", "metrics"]
# Client switches that weaken an ops control; a key may use only those it was allowed.
Switch = Literal["gate", "grounding"]
SWITCHES: tuple[str, ...] = ("gate", "grounding")

SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    rpm INTEGER,
    tpm INTEGER,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    max_concurrent INTEGER,
    switches TEXT NOT NULL DEFAULT ''
)
"""
# Columns added after the first release: a store created before gets them on open.
ADDED_COLUMNS = {"max_concurrent": "INTEGER", "switches": "TEXT NOT NULL DEFAULT ''"}


class KeyRecord(BaseModel):
    id: str
    name: str
    role: Role
    rpm: int | None = None  # requests per minute; None = unlimited
    tpm: int | None = None  # tokens per minute
    max_concurrent: int | None = None  # requests in flight per ingress replica; None = the settings' default
    switches: tuple[Switch, ...] = ()  # client switches this key may turn off (`gate: false`, ...)
    created_at: datetime
    revoked_at: datetime | None = None


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyNotFound(LookupError):
    pass


class KeyStoreMissing(FileNotFoundError):
    pass


class KeyStore:
    """`create=False` (serving): the file must exist; the CLI creates it with the first key."""

    def __init__(self, path: Path, create: bool = True) -> None:
        self.path = path
        if not create and not path.is_file():
            raise KeyStoreMissing(
                f"no API key store at {path}: create a key with `gateway keys create --name NAME`, "
                "or point GATEWAY_AUTH__KEYS_DB at the store"
            )
        create_private(path)  # key hashes: 0600 in a 0700 directory
        with closing(self._connect()) as db, db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(SCHEMA)
            _add_columns(db)

    def _connect(self) -> sqlite3.Connection:
        db = connect_private(self.path)
        db.row_factory = sqlite3.Row
        return db

    def create(
        self, name: str, role: Role = "user", rpm: int | None = None, tpm: int | None = None,
        max_concurrent: int | None = None, switches: tuple[Switch, ...] = (),
    ) -> tuple[KeyRecord, str]:
        secret = "gw-" + secrets.token_urlsafe(32)
        record = KeyRecord(
            id=uuid.uuid4().hex[:12], name=name, role=role, rpm=rpm, tpm=tpm, max_concurrent=max_concurrent,
            switches=tuple(dict.fromkeys(switches)), created_at=datetime.now(timezone.utc),
        )
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT INTO keys (id, name, key_hash, role, rpm, tpm, max_concurrent, switches, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record.id, name, hash_key(secret), role, rpm, tpm, max_concurrent, ",".join(record.switches),
                 record.created_at.isoformat()),
            )
        return record, secret

    def lookup(self, secret: str) -> KeyRecord | None:
        """The active key with this secret, or None (unknown or revoked)."""
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT * FROM keys WHERE key_hash = ? AND revoked_at IS NULL", (hash_key(secret),)
            ).fetchone()
        return _record(row) if row else None

    def list(self) -> list[KeyRecord]:
        with closing(self._connect()) as db:
            return [_record(row) for row in db.execute("SELECT * FROM keys ORDER BY created_at")]

    def revoke(self, key_id: str) -> KeyRecord:
        with closing(self._connect()) as db, db:
            updated = db.execute(
                "UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (datetime.now(timezone.utc).isoformat(), key_id),
            ).rowcount
            row = db.execute("SELECT * FROM keys WHERE id = ?", (key_id,)).fetchone()
        if row is None or not updated and row["revoked_at"] is None:
            raise KeyNotFound(f"no key with id '{key_id}'")
        return _record(row)


def census(path: Path) -> KeyCensus:
    """Keys ever created and active ones, read without creating the store."""
    if not path.is_file():
        return KeyCensus()
    with closing(connect_private(path)) as db:
        try:
            total, active = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(revoked_at IS NULL), 0) FROM keys"
            ).fetchone()
        except sqlite3.OperationalError:  # an empty file: no table yet
            return KeyCensus(exists=True)
    return KeyCensus(exists=True, total=int(total), active=int(active))


def _add_columns(db: sqlite3.Connection) -> None:
    present = {row[1] for row in db.execute("PRAGMA table_info(keys)")}
    for column, kind in ADDED_COLUMNS.items():
        if column not in present:
            try:
                db.execute(f"ALTER TABLE keys ADD COLUMN {column} {kind}")
            except sqlite3.OperationalError as exc:  # another replica added it first
                if "duplicate column" not in str(exc):
                    raise


def _record(row: sqlite3.Row) -> KeyRecord:
    return KeyRecord(
        id=row["id"], name=row["name"], role=row["role"], rpm=row["rpm"], tpm=row["tpm"],
        max_concurrent=row["max_concurrent"], switches=tuple(s for s in row["switches"].split(",") if s),
        created_at=datetime.fromisoformat(row["created_at"]),
        revoked_at=datetime.fromisoformat(row["revoked_at"]) if row["revoked_at"] else None,
    )
