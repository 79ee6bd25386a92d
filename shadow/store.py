"""Durable store of primary/shadow pairs and canary decisions (SQLite, WAL).

One row per mirrored request: who answered (tier, adapter version), what each said, how
long each took, how much they agree. The daily review samples from here; the router
flywheel reads its labels from here; every automatic canary decision is an event here.
"""

from __future__ import annotations

import json
import random
import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS pairs (
        request_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        tags TEXT NOT NULL,
        primary_target TEXT NOT NULL,
        shadow_target TEXT NOT NULL,
        prompt TEXT NOT NULL,
        primary_text TEXT NOT NULL,
        shadow_text TEXT NOT NULL,
        primary_latency_s REAL NOT NULL,
        shadow_latency_s REAL NOT NULL,
        agreement REAL
    )""",
    "CREATE INDEX IF NOT EXISTS pairs_created ON pairs (created_at)",
    """CREATE TABLE IF NOT EXISTS events (
        created_at TEXT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        detail TEXT NOT NULL
    )""",
)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class ShadowPair(BaseModel):
    request_id: str
    created_at: datetime = Field(default_factory=_now)
    tags: dict[str, str] = Field(default_factory=dict, description="tier, adapter, route reason, category…")
    primary_target: str = Field(description="e.g. 'large' or 'small:refund-v2-2026-11-21'")
    shadow_target: str
    prompt: str
    primary_text: str
    shadow_text: str
    primary_latency_s: float
    shadow_latency_s: float
    agreement: float | None = Field(None, description="Similarity of the two answers in [0, 1]")

    @property
    def length_delta(self) -> int:
        return len(self.shadow_text) - len(self.primary_text)


class ShadowEvent(BaseModel):
    created_at: datetime = Field(default_factory=_now)
    kind: str = Field(description="e.g. canary_rejected, rolled_back")
    subject: str = Field(description="What it is about, e.g. an adapter version")
    detail: dict[str, Any] = Field(default_factory=dict)


class ShadowStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.execute("PRAGMA journal_mode=WAL")  # readers (review, training) never block the writer
            for statement in SCHEMA:
                db.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=5.0)
        db.row_factory = sqlite3.Row
        return db

    def add_pair(self, pair: ShadowPair) -> None:
        row = pair.model_dump(mode="json")
        row["tags"] = json.dumps(pair.tags, sort_keys=True)
        columns = ", ".join(row)
        with closing(self._connect()) as db, db:
            db.execute(f"INSERT INTO pairs ({columns}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))

    def pairs(self, since: datetime | None = None, limit: int | None = None) -> list[ShadowPair]:
        """Newest first."""
        query = "SELECT * FROM pairs WHERE created_at >= ? ORDER BY created_at DESC"
        params: tuple[Any, ...] = ((since or datetime.min.replace(tzinfo=timezone.utc)).isoformat(),)
        if limit is not None:
            query += " LIMIT ?"
            params += (limit,)
        with closing(self._connect()) as db:
            return [_pair(row) for row in db.execute(query, params)]

    def sample(self, n: int, since: datetime | None = None, seed: int = 0) -> list[ShadowPair]:
        """A reproducible random sample for the daily review."""
        pairs = self.pairs(since)
        return random.Random(seed).sample(pairs, min(n, len(pairs)))

    def add_event(self, event: ShadowEvent) -> None:
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT INTO events (created_at, kind, subject, detail) VALUES (?, ?, ?, ?)",
                (event.created_at.isoformat(), event.kind, event.subject, json.dumps(event.detail, sort_keys=True)),
            )

    def events(self, subject: str | None = None) -> list[ShadowEvent]:
        query, params = "SELECT * FROM events", ()
        if subject is not None:
            query, params = query + " WHERE subject = ?", (subject,)
        with closing(self._connect()) as db:
            rows = db.execute(query + " ORDER BY created_at", params).fetchall()
        return [ShadowEvent(created_at=datetime.fromisoformat(r["created_at"]), kind=r["kind"],
                            subject=r["subject"], detail=json.loads(r["detail"])) for r in rows]


def _pair(row: sqlite3.Row) -> ShadowPair:
    values = dict(row)
    values["tags"] = json.loads(values["tags"])
    return ShadowPair.model_validate(values)
