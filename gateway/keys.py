"""API keys: stored hashed in SQLite (WAL), managed with `gateway keys ...`.

Only the sha256 of a key is stored; the key itself is shown once, at creation.
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

from model_files.private_db import connect_private, create_private

Role = Literal["user", "admin"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    rpm INTEGER,
    tpm INTEGER,
    created_at TEXT NOT NULL,
    revoked_at TEXT
)
"""


class KeyRecord(BaseModel):
    id: str
    name: str
    role: Role
    rpm: int | None = None  # requests per minute; None = unlimited
    tpm: int | None = None  # tokens per minute
    created_at: datetime
    revoked_at: datetime | None = None


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyNotFound(LookupError):
    pass


class KeyStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        create_private(path)  # key hashes: 0600 in a 0700 directory
        with closing(self._connect()) as db, db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = connect_private(self.path)
        db.row_factory = sqlite3.Row
        return db

    def create(self, name: str, role: Role = "user", rpm: int | None = None, tpm: int | None = None) -> tuple[KeyRecord, str]:
        secret = "gw-" + secrets.token_urlsafe(32)
        record = KeyRecord(
            id=uuid.uuid4().hex[:12], name=name, role=role, rpm=rpm, tpm=tpm,
            created_at=datetime.now(timezone.utc),
        )
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT INTO keys (id, name, key_hash, role, rpm, tpm, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (record.id, name, hash_key(secret), role, rpm, tpm, record.created_at.isoformat()),
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

    def active_count(self) -> int:
        with closing(self._connect()) as db:
            return int(db.execute("SELECT COUNT(*) FROM keys WHERE revoked_at IS NULL").fetchone()[0])

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


def _record(row: sqlite3.Row) -> KeyRecord:
    return KeyRecord(
        id=row["id"], name=row["name"], role=row["role"], rpm=row["rpm"], tpm=row["tpm"],
        created_at=datetime.fromisoformat(row["created_at"]),
        revoked_at=datetime.fromisoformat(row["revoked_at"]) if row["revoked_at"] else None,
    )
