"""The usage journal: which documents served each grounded query, when, in which category.

One row per grounded query (its outcome: `grounded`, or the retrieval failure
`low_relevance` / `empty` / `error`) and one row per chunk put into its prompt. The
staleness queue counts a document's query volume from it, the review its categories'
failure rates. It grows with traffic, so the gateway prunes it by age and by rows
(`prune`). SQLite in WAL mode: `retrieval review` reads while the gateway writes.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, Sequence

from pydantic import BaseModel, Field

from model_files.private_db import connect_private, create_private

Outcome = Literal["grounded", "low_relevance", "empty", "error"]
FAILURES: tuple[Outcome, ...] = ("low_relevance", "empty", "error")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS queries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at TEXT NOT NULL,
        request_id TEXT NOT NULL,
        category TEXT NOT NULL,
        outcome TEXT NOT NULL,
        context TEXT NOT NULL,
        relevance REAL
    )""",
    "CREATE INDEX IF NOT EXISTS queries_created ON queries (created_at)",
    """CREATE TABLE IF NOT EXISTS served (
        query_id INTEGER NOT NULL,
        rank INTEGER NOT NULL,
        chunk_id TEXT NOT NULL,
        doc_id TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS served_query ON served (query_id)",
    "CREATE INDEX IF NOT EXISTS served_doc ON served (doc_id)",
)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class ServedChunk(BaseModel):
    chunk_id: str
    doc_id: str


class QueryUsage(BaseModel):
    """One grounded query: what retrieval gave it (nothing when it failed)."""

    request_id: str
    created_at: datetime = Field(default_factory=_now)
    category: str = Field("", description="Bounded label of the client's category (or adapter domain); '' = none")
    outcome: Outcome
    context: str = Field("none", description="first-stage | reranked | none")
    relevance: float | None = Field(None, description="Best dense cosine of the query (None: retrieval errored)")
    chunks: list[ServedChunk] = Field(default_factory=list, description="The prompt's chunks in rank order")


class CategoryOutcomes(BaseModel):
    category: str
    queries: int
    failures: int

    @property
    def failure_rate(self) -> float:
        return self.failures / self.queries if self.queries else 0.0


class UsageStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        create_private(self.path)  # request ids and categories: 0600 in a 0700 directory
        with closing(self._connect()) as db, db:
            db.execute("PRAGMA journal_mode=WAL")  # the review reads while the gateway writes
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: a crash loses at most the last commits
            for statement in _SCHEMA:
                db.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        return connect_private(self.path)

    def add(self, records: Sequence[QueryUsage]) -> None:
        """Write a batch in one transaction (the gateway flushes its queue this way)."""
        with closing(self._connect()) as db, db:
            for record in records:
                cursor = db.execute(
                    "INSERT INTO queries (created_at, request_id, category, outcome, context, relevance) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (_iso(record.created_at), record.request_id, record.category, record.outcome,
                     record.context, record.relevance),
                )
                db.executemany(
                    "INSERT INTO served (query_id, rank, chunk_id, doc_id) VALUES (?, ?, ?, ?)",
                    [(cursor.lastrowid, rank, c.chunk_id, c.doc_id) for rank, c in enumerate(record.chunks)],
                )

    def queries(self, since: datetime) -> int:
        """Grounded queries since `since`, retrieval failures included (the share's denominator)."""
        with closing(self._connect()) as db:
            return db.execute("SELECT COUNT(*) FROM queries WHERE created_at >= ?", (_iso(since),)).fetchone()[0]

    def document_volume(self, since: datetime) -> dict[str, int]:
        """Per document, the grounded queries since `since` whose prompt held one of its chunks."""
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT s.doc_id, COUNT(DISTINCT s.query_id) FROM served s JOIN queries q ON q.id = s.query_id "
                "WHERE q.created_at >= ? GROUP BY s.doc_id", (_iso(since),),
            ).fetchall()
        return {doc: count for doc, count in rows}

    def categories(self, since: datetime) -> list[CategoryOutcomes]:
        """Per category, grounded queries and retrieval failures since `since`."""
        marks = ", ".join("?" * len(FAILURES))
        with closing(self._connect()) as db:
            rows = db.execute(
                f"SELECT category, COUNT(*), SUM(CASE WHEN outcome IN ({marks}) THEN 1 ELSE 0 END) "
                "FROM queries WHERE created_at >= ? GROUP BY category", (*FAILURES, _iso(since)),
            ).fetchall()
        return [CategoryOutcomes(category=c, queries=n, failures=f) for c, n, f in rows]

    def prune(self, older_than: datetime, max_rows: int) -> int:
        """Delete queries created before `older_than`, then all but the newest `max_rows`,
        with their chunks; checkpoint the WAL so the file stops growing. Queries removed."""
        with closing(self._connect()) as db, db:
            aged = db.execute("DELETE FROM queries WHERE created_at < ?", (_iso(older_than),)).rowcount
            capped = db.execute(
                "DELETE FROM queries WHERE id <= (SELECT id FROM queries ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (max_rows,),
            ).rowcount
            db.execute("DELETE FROM served WHERE query_id NOT IN (SELECT id FROM queries)")
        with closing(self._connect()) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return aged + capped

    def rows(self) -> dict[str, int]:
        with closing(self._connect()) as db:
            return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("queries", "served")}


def _iso(moment: datetime) -> str:
    """UTC, one fixed format: the stored strings compare in time order."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")
