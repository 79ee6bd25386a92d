"""The knowledge base on disk: one SQLite file with the chunks and their dense vectors.

Rebuilds are incremental: a chunk whose digest (title, section, text) is unchanged keeps
its stored vector, so re-ingesting a folder only embeds what changed. The BM25 index
is rebuilt from the chunks when the index is loaded (milliseconds per thousand chunks).
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Sequence

import numpy as np
from pydantic import BaseModel

from retrieval.documents import Chunk, Document, chunk_document
from text.embedding import Embedder, Matrix

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    id TEXT PRIMARY KEY, doc_id TEXT NOT NULL, title TEXT NOT NULL, section TEXT NOT NULL,
    text TEXT NOT NULL, last_modified TEXT NOT NULL, tags TEXT NOT NULL,
    digest TEXT NOT NULL, vector BLOB NOT NULL, position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class IngestReport(BaseModel):
    documents: int
    chunks: int
    added: int
    changed: int
    removed: int
    unchanged: int

    @property
    def embedded(self) -> int:
        return self.added + self.changed


class DocumentInfo(BaseModel):
    doc_id: str
    title: str
    last_modified: datetime
    chunks: int


class KnowledgeStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def exists(self) -> bool:
        return self.path.exists()

    def origin(self) -> str | None:
        """What built this KB ("support-default" for setup's), None if unknown or absent."""
        if not self.exists():
            return None
        with closing(self._connect()) as db:
            return self._meta(db, "origin")

    def ingest(
        self, documents: Sequence[Document], embedder: Embedder, encoder_name: str, origin: str = "ingest"
    ) -> IngestReport:
        """Make the store hold exactly these documents' chunks (a full sync, incremental work)."""
        chunks = [c for d in documents for c in chunk_document(d)]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            if self._meta(db, "encoder") not in (None, encoder_name):
                db.execute("DELETE FROM chunks")  # vectors of another encoder are useless
            stored = dict(db.execute("SELECT id, digest FROM chunks").fetchall())
            fresh = [c for c in chunks if stored.get(c.id) != c.digest]
            vectors = embedder.embed([c.passage() for c in fresh]) if fresh else np.zeros((0, 0))
            wanted = {c.id for c in chunks}
            removed = [i for i in stored if i not in wanted]
            db.executemany("DELETE FROM chunks WHERE id = ?", [(i,) for i in removed])
            for chunk, vector in zip(fresh, vectors):
                db.execute(
                    "INSERT OR REPLACE INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (chunk.id, chunk.doc_id, chunk.title, chunk.section, chunk.text,
                     chunk.last_modified.isoformat(), json.dumps(chunk.tags), chunk.digest,
                     np.asarray(vector, dtype=np.float32).tobytes(), 0),
                )
            # Dates and tags are not in the digest: a document re-dated after a review (text
            # unchanged) must leave the staleness queue without being re-embedded.
            db.executemany(
                "UPDATE chunks SET position = ?, last_modified = ?, tags = ? WHERE id = ?",
                [(i, c.last_modified.isoformat(), json.dumps(c.tags), c.id) for i, c in enumerate(chunks)],
            )
            db.execute("INSERT OR REPLACE INTO meta VALUES ('encoder', ?)", (encoder_name,))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('origin', ?)", (origin,))
        changed = sum(1 for c in fresh if c.id in stored)
        return IngestReport(
            documents=len(documents), chunks=len(chunks), added=len(fresh) - changed, changed=changed,
            removed=len(removed), unchanged=len(chunks) - len(fresh),
        )

    def load(self) -> tuple[list[Chunk], Matrix, str]:
        """Chunks in ingestion order, their vectors (one row each) and the encoder's name."""
        if not self.exists():
            raise FileNotFoundError(f"no knowledge base at {self.path} (run `retrieval ingest`)")
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT id, doc_id, title, section, text, last_modified, tags, vector "
                "FROM chunks ORDER BY position"
            ).fetchall()
            encoder = self._meta(db, "encoder") or ""
        chunks = [
            Chunk(id=r[0], doc_id=r[1], title=r[2], section=r[3], text=r[4],
                  last_modified=datetime.fromisoformat(r[5]), tags=json.loads(r[6]))
            for r in rows
        ]
        vectors = np.stack([np.frombuffer(r[7], dtype=np.float32) for r in rows]) if rows else np.zeros((0, 1))
        return chunks, vectors.astype(np.float32), encoder

    def documents(self) -> list[DocumentInfo]:
        """Each document once, in ingestion order: its title, last_modified and chunk count."""
        if not self.exists():
            raise FileNotFoundError(f"no knowledge base at {self.path} (run `retrieval ingest`)")
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT doc_id, MIN(title), MAX(last_modified), COUNT(*) FROM chunks "
                "GROUP BY doc_id ORDER BY MIN(position)"
            ).fetchall()
        return [
            DocumentInfo(doc_id=r[0], title=r[1], last_modified=datetime.fromisoformat(r[2]), chunks=r[3])
            for r in rows
        ]

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path)
        db.executescript(_SCHEMA)
        return db

    @staticmethod
    def _meta(db: sqlite3.Connection, key: str) -> str | None:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None
