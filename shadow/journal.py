"""The gateway's journal: one SQLite file (WAL) of what the gateway answered and what
became of it. Each reader takes it through a protocol of its own concern: the rollout's
ratings (support.ratings.RatingsJournal), the router canary's scores and events
(router.canary_store.CanaryStore), the flags (flags.store.FlagStore), the router
flywheel's pairs (router's PairReader); shadow itself writes pairs and reads the rest.


- requests: each served answer (the draft) with its route and the API key that asked for
  it, so feedback can find it and only that key rate it; its id is the gateway's own
  (never a client's `x-request-id`), and a row is never replaced;
- pairs: two answers to one request (primary and shadow, or a canary and its reference):
  who answered, what each said, how long each took, how much they agree;
- feedback: ratings and the text actually sent, per request: one per (request, key);
- events: every automatic canary decision;
- flags: answers the flag evaluators (flags/) marked for follow-up;
- router_scores: the active and candidate router's scores of one request (router canary).
The daily review samples pairs; the router flywheel reads its labels from pairs; the
canary reads agreement and negative-feedback rates per adapter version. A rated answer
counts once however often it was rated (its newest rating): the canary and the rollout
count rated answers, not ratings.
How much of the users' text a row keeps is the writer's choice (shadow.privacy): the
journal stores what it is given.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from pydantic import BaseModel, Field

from flags.store import FlagRecord  # the answer flags' rows (flags table)
from model_files.private_db import connect_private, create_private
from router.canary_store import RouterScore  # the router canary's rows (router_scores table)

_TAG_KEY = re.compile(r"[A-Za-z0-9_.-]{1,100}")


def _tag_of(column: str, key: str) -> str:
    """The SQL of tag `key` in a JSON tags column. The path is written into the statement,
    not bound, so it is the very expression an index on the tag is built on; hence checked."""
    if not _TAG_KEY.fullmatch(key):
        raise ValueError(f"not a tag key: {key[:100]!r}")
    return f"json_extract({column}, '$.\"{key}\"')"


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
    "CREATE INDEX IF NOT EXISTS pairs_targets ON pairs (primary_target, shadow_target)",
    """CREATE TABLE IF NOT EXISTS requests (
        request_id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        target TEXT NOT NULL,
        tags TEXT NOT NULL,
        prompt TEXT NOT NULL,
        draft TEXT NOT NULL,
        key_id TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS requests_created ON requests (created_at)",
    "CREATE INDEX IF NOT EXISTS requests_target ON requests (target)",
    # The rollout reads its figures per category: one index range, not a scan per category.
    f"CREATE INDEX IF NOT EXISTS requests_rollout ON requests ({_tag_of('tags', 'rollout_category')}, created_at)",
    """CREATE TABLE IF NOT EXISTS feedback (
        request_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        rating INTEGER NOT NULL,
        sent_text TEXT,
        comment TEXT,
        match REAL,
        key_id TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS feedback_request ON feedback (request_id)",
    """CREATE TABLE IF NOT EXISTS events (
        created_at TEXT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        detail TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS router_scores (
        request_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        prompt_key TEXT NOT NULL,
        category TEXT,
        active_version TEXT NOT NULL,
        candidate_version TEXT NOT NULL,
        active_tier TEXT NOT NULL,
        candidate_tier TEXT NOT NULL,
        active_score REAL,
        candidate_score REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS router_scores_versions ON router_scores (active_version, candidate_version)",
    """CREATE TABLE IF NOT EXISTS flags (
        request_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        category TEXT NOT NULL,
        tier TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL,
        score REAL
    )""",
    "CREATE INDEX IF NOT EXISTS flags_created ON flags (created_at)",
)


TABLES = ("pairs", "requests", "feedback", "events", "router_scores", "flags")
# Columns added since a journal was first made (an older file gets them on open).
ADDED_COLUMNS = (("requests", "key_id"), ("feedback", "key_id"))
# One rating per (request, key); the anonymous callers of an open gateway are one rater.
ONE_RATING = "CREATE UNIQUE INDEX feedback_once ON feedback (request_id, IFNULL(key_id, ''))"
# The rating a rated answer counts with: its newest (the rowid of its last insert).
NEWEST_RATING = "f.rowid = (SELECT MAX(g.rowid) FROM feedback g WHERE g.request_id = f.request_id)"


class JournalConflict(Exception):
    """A write the journal refuses because a row it must not replace exists."""


class AlreadyJournaled(JournalConflict):
    """An answer with this request id is on record: ids are unique, rows never replaced."""


class AlreadyRated(JournalConflict):
    """This key has rated this answer already."""


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


class RequestRecord(BaseModel):
    """A served answer (the draft a support agent or customer saw) and its route."""

    request_id: str = Field(description="The gateway's own id of the request (the response id's)")
    created_at: datetime = Field(default_factory=_now)
    target: str = Field(description="What answered: large, small or small:<domain>@<version>")
    tags: dict[str, str] = Field(default_factory=dict)
    prompt: str
    draft: str
    key_id: str | None = Field(None, description="The API key that asked (None: anonymous, open gateway): only it may rate")


class FeedbackRecord(BaseModel):
    request_id: str
    created_at: datetime = Field(default_factory=_now)
    rating: int = Field(description="+1 or -1")
    sent_text: str | None = None
    comment: str | None = None
    match: float | None = Field(None, description="Agreement of the draft with the text sent")
    key_id: str | None = Field(None, description="The API key that rated (None: anonymous, open gateway)")


class Stats(BaseModel):
    n: int
    mean: float | None


class Ratings(BaseModel):
    """Counts of feedback on a set of journaled answers (e.g. one category's drafts); what
    they mean for a rollout is support.ratings.Ratings."""

    n: int = Field(0, description="Ratings")
    negative: int = Field(0, description="Ratings of -1")
    with_sent: int = Field(0, description="Ratings that came with the text actually sent (a match score)")
    matched: int = Field(0, description="Of those, matches at or above the match threshold")
    mean_match: float | None = None


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        create_private(path)  # users' text: 0600 in a 0700 directory
        with closing(self._connect()) as db, db:
            db.execute("PRAGMA journal_mode=WAL")  # readers (review, training) never block the writer
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: a crash loses at most the last commits
            for statement in SCHEMA:
                db.execute(statement)
        with closing(self._connect()) as db, db:
            _migrate(db)

    def _connect(self) -> sqlite3.Connection:
        db = connect_private(self.path)
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
        params: tuple[Any, ...] = (_iso(since),)
        if limit is not None:
            query += " LIMIT ?"
            params += (limit,)
        with closing(self._connect()) as db:
            return [_pair(row) for row in db.execute(query, params)]

    def pairs_of(self, request_ids: Sequence[str]) -> list[ShadowPair]:
        """The pairs recorded for these requests (the router canary's graded outcomes)."""
        found: list[ShadowPair] = []
        ids = list(dict.fromkeys(request_ids))
        with closing(self._connect()) as db:
            for start in range(0, len(ids), 500):  # SQLite's bound on query parameters
                chunk = ids[start:start + 500]
                query = f"SELECT * FROM pairs WHERE request_id IN ({', '.join('?' * len(chunk))})"
                found += [_pair(row) for row in db.execute(query, chunk)]
        return found

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

    def record_event(self, kind: str, subject: str, detail: Mapping[str, Any]) -> None:
        """`add_event` for callers that know no `ShadowEvent` (router.canary_store.CanaryStore)."""
        self.add_event(ShadowEvent(kind=kind, subject=subject, detail=dict(detail)))

    def events(self, subject: str | None = None) -> list[ShadowEvent]:
        query, params = "SELECT * FROM events", ()
        if subject is not None:
            query, params = query + " WHERE subject = ?", (subject,)
        with closing(self._connect()) as db:
            rows = db.execute(query + " ORDER BY created_at", params).fetchall()
        return [ShadowEvent(created_at=datetime.fromisoformat(r["created_at"]), kind=r["kind"],
                            subject=r["subject"], detail=json.loads(r["detail"])) for r in rows]


    # ---- answers and feedback --------------------------------------------------

    def add_request(self, record: RequestRecord) -> None:
        """Record a served answer; `AlreadyJournaled` if its id is on record (never replaced:
        the answer on record is the one its key may rate)."""
        row = record.model_dump(mode="json")
        row["tags"] = json.dumps(record.tags, sort_keys=True)
        if not self._insert_new("requests", row):
            raise AlreadyJournaled(f"request {record.request_id} is on record already")

    def request(self, request_id: str) -> RequestRecord | None:
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM requests WHERE request_id = ?", (request_id,)).fetchone()
        if row is None:
            return None
        values = dict(row)
        values["tags"] = json.loads(values["tags"])
        return RequestRecord.model_validate(values)

    def add_feedback(self, record: FeedbackRecord) -> None:
        """Record a rating; `AlreadyRated` if this key rated this answer before."""
        if not self._insert_new("feedback", record.model_dump(mode="json")):
            raise AlreadyRated(f"request {record.request_id} is rated by this key already")

    def _insert_new(self, table: str, row: dict[str, object]) -> bool:
        """Insert `row`; False when a unique key says it is on record already (never replaced)."""
        try:
            with closing(self._connect()) as db, db:
                db.execute(
                    f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                    tuple(row.values()),
                )
        except sqlite3.IntegrityError:
            return False
        return True

    def feedback(self, request_id: str) -> list[FeedbackRecord]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM feedback WHERE request_id = ? ORDER BY created_at", (request_id,))
            return [FeedbackRecord.model_validate(dict(r)) for r in rows]

    # ---- canary statistics -----------------------------------------------------

    def agreement(self, target: str, reference: str, since: datetime | None = None) -> Stats:
        """Mean agreement of `target`'s answers with `reference`'s on the same requests."""
        with closing(self._connect()) as db:
            n, mean = db.execute(
                "SELECT COUNT(agreement), AVG(agreement) FROM pairs WHERE primary_target = ? "
                "AND shadow_target = ? AND created_at >= ?",
                (target, reference, _iso(since)),
            ).fetchone()
        return Stats(n=n, mean=mean)

    def paired_agreement(self, a: str, b: str, reference: str) -> tuple[Stats, Stats]:
        """Agreement with `reference` of `a` and of `b`, on the requests both answered:
        the two versions are judged on the same questions."""
        with closing(self._connect()) as db:
            n, mean_a, mean_b = db.execute(
                "SELECT COUNT(*), AVG(x.agreement), AVG(y.agreement) FROM pairs x JOIN pairs y "
                "ON x.request_id = y.request_id WHERE x.primary_target = ? AND x.shadow_target = ? "
                "AND y.primary_target = ? AND y.shadow_target = ? "
                "AND x.agreement IS NOT NULL AND y.agreement IS NOT NULL",
                (a, reference, b, reference),
            ).fetchone()
        return Stats(n=n, mean=mean_a), Stats(n=n, mean=mean_b)

    def negative_rate(self, target: str, since: datetime | None = None) -> Stats:
        """Share of rated answers of `target` whose rating (the newest) is -1."""
        with closing(self._connect()) as db:
            n, mean = db.execute(
                "SELECT COUNT(*), AVG(CASE WHEN f.rating < 0 THEN 1.0 ELSE 0.0 END) FROM requests r "
                "JOIN feedback f ON f.request_id = r.request_id WHERE r.target = ? AND f.created_at >= ? "
                f"AND {NEWEST_RATING}",
                (target, _iso(since)),
            ).fetchone()
        return Stats(n=n, mean=mean)

    def ratings(self, tags: Mapping[str, str], since: datetime | None = None, match_at: float = 1.0) -> Ratings:
        """Feedback on the answers journaled with these tags, served since `since`: each rated
        answer once, with its newest rating."""
        where = "".join(f" AND {_tag_of('r.tags', key)} = ?" for key in tags)
        with closing(self._connect()) as db:
            n, negative, with_sent, matched, mean = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(f.rating < 0), 0), COUNT(f.match), "
                "COALESCE(SUM(f.match >= ?), 0), AVG(f.match) FROM requests r "
                f"JOIN feedback f ON f.request_id = r.request_id WHERE r.created_at >= ?{where} "
                f"AND {NEWEST_RATING}",
                [match_at, _iso(since), *tags.values()],
            ).fetchone()
        return Ratings(n=n, negative=negative, with_sent=with_sent, matched=matched, mean_match=mean)

    def rated_tag_values(self, key: str, since: datetime | None = None, limit: int | None = None) -> list[str]:
        """The values of tag `key` among rated answers served since `since`, the most rated
        first, at most `limit` (None: all)."""
        tag = _tag_of("r.tags", key)
        with closing(self._connect()) as db:
            rows = db.execute(
                f"SELECT {tag} AS value, COUNT(*) AS n FROM requests r WHERE r.created_at >= ? "
                "AND value IS NOT NULL AND EXISTS (SELECT 1 FROM feedback f WHERE f.request_id = r.request_id) "
                "GROUP BY value ORDER BY n DESC, value LIMIT ?",
                (_iso(since), -1 if limit is None else limit),
            ).fetchall()
        return [str(row[0]) for row in rows]

    def add_flags(self, records: Sequence[FlagRecord]) -> None:
        rows = [record.model_dump(mode="json") for record in records]
        if not rows:
            return
        columns = ", ".join(rows[0])
        with closing(self._connect()) as db, db:
            db.executemany(
                f"INSERT INTO flags ({columns}) VALUES ({', '.join('?' * len(rows[0]))})",
                [tuple(row.values()) for row in rows],
            )

    def flags(self, since: datetime | None = None, kinds: Sequence[str] = (), limit: int | None = None) -> list[FlagRecord]:
        """Flags raised since `since` (of these kinds; [] = all), newest first."""
        query, params = "SELECT * FROM flags WHERE created_at >= ?", [_iso(since)]
        if kinds:
            query += f" AND kind IN ({', '.join('?' * len(kinds))})"
            params += list(kinds)
        query += " ORDER BY created_at DESC, rowid DESC"
        if limit is not None:
            query, params = query + " LIMIT ?", params + [limit]
        with closing(self._connect()) as db:
            return [FlagRecord.model_validate(dict(row)) for row in db.execute(query, params)]

    def add_router_score(self, record: RouterScore) -> None:
        row = record.model_dump(mode="json")
        with closing(self._connect()) as db, db:
            db.execute(
                f"INSERT INTO router_scores ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                tuple(row.values()),
            )

    def router_scores(self, active: str, candidate: str, limit: int = 10_000) -> list[RouterScore]:
        """The newest `limit` requests both versions scored (the canary's sample)."""
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT * FROM router_scores WHERE active_version = ? AND candidate_version = ? "
                "ORDER BY rowid DESC LIMIT ?", (active, candidate, limit),
            ).fetchall()
        return [RouterScore.model_validate(dict(row)) for row in rows]

    def prune(self, older_than: datetime, max_rows: int) -> dict[str, int]:
        """Delete rows created before `older_than`, then all but each table's newest
        `max_rows`; checkpoint the WAL so the file stops growing. Rows removed per table."""
        removed = {}
        with closing(self._connect()) as db, db:
            for table in TABLES:
                aged = db.execute(f"DELETE FROM {table} WHERE created_at < ?", (_iso(older_than),)).rowcount
                capped = db.execute(
                    f"DELETE FROM {table} WHERE rowid <= "
                    f"(SELECT rowid FROM {table} ORDER BY rowid DESC LIMIT 1 OFFSET ?)", (max_rows,)
                ).rowcount
                removed[table] = aged + capped
        with closing(self._connect()) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return removed

    def rows(self) -> dict[str, int]:
        with closing(self._connect()) as db:
            return {table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in TABLES}


def _iso(since: datetime | None) -> str:
    return (since or datetime.min.replace(tzinfo=timezone.utc)).isoformat()


def _pair(row: sqlite3.Row) -> ShadowPair:
    values = dict(row)
    values["tags"] = json.loads(values["tags"])
    return ShadowPair.model_validate(values)


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a journal made by an older gateway up to this schema, once, under a write lock
    (replicas open the same file)."""
    db.execute("BEGIN IMMEDIATE")
    for table, column in ADDED_COLUMNS:
        if column not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'feedback_once'").fetchone():
        return
    # Ratings from before one per (request, key): each rater's first is the one that stays.
    db.execute(
        "DELETE FROM feedback WHERE rowid NOT IN "
        "(SELECT MIN(rowid) FROM feedback GROUP BY request_id, IFNULL(key_id, ''))"
    )
    db.execute(ONE_RATING)


def read_pairs(store: Path, since: datetime | None) -> list[ShadowPair]:
    """The pairs of the store at `store` (the router flywheel's `PairReader`): those with
    their text (a pair journaled under `store_text: none` has none to learn from)."""
    return [pair for pair in Journal(store).pairs(since=since) if pair.prompt]
