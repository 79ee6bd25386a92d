"""The spend ledger: one SQLite file (WAL), one row per (hour, key, category, tier) with the
requests, tokens, cost and top-tier cost added up, never a row per request: it grows with
hours, keys, categories and tiers, not with traffic. Pruned by age and rows.

Key ids and names are the callers' identities: the file is 0600 in a 0700 directory. Every
ingress replica adds to the same rows (an upsert adds), and `gateway spend` reads while they
write.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, Mapping, Sequence

from model_files.private_db import connect_private, create_private
from spend.periods import hour_of, period_start, utc

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS spend (
        hour TEXT NOT NULL,
        key_id TEXT NOT NULL,
        key_name TEXT NOT NULL,
        category TEXT NOT NULL,
        tier TEXT NOT NULL,
        requests INTEGER NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        usd REAL NOT NULL,
        top_usd REAL NOT NULL,
        PRIMARY KEY (hour, key_id, category, tier)
    )""",
    "CREATE INDEX IF NOT EXISTS spend_key_hour ON spend (key_id, hour)",
)
By = Literal["key", "category", "tier"]
_GROUP = {"key": "key_id", "category": "category", "tier": "tier"}


@dataclass(frozen=True)
class RowKey:
    hour: datetime
    key_id: str  # '' = a caller without a key
    category: str  # the bounded metric label: a known category, 'other' or ''
    tier: str


@dataclass
class Amount:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usd: float = 0.0
    top_usd: float = 0.0
    key_name: str = ""

    def add(self, other: "Amount") -> None:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.usd += other.usd
        self.top_usd += other.top_usd
        self.key_name = other.key_name or self.key_name

    @property
    def saved_usd(self) -> float:
        return self.top_usd - self.usd


@dataclass(frozen=True)
class PeriodTotals:
    """A key's spend in the current day and month, as of the periods starting at these times."""

    day_start: datetime
    month_start: datetime
    day_usd: float = 0.0
    month_usd: float = 0.0


@dataclass
class SpendLine:
    group: str  # the key id, category or tier; '' for the total
    amount: Amount = field(default_factory=Amount)


class SpendLedger:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        create_private(self.path)  # key ids and names: 0600 in a 0700 directory
        with closing(self._connect()) as db, db:
            db.execute("PRAGMA journal_mode=WAL")  # `gateway spend` reads while replicas write
            db.execute("PRAGMA synchronous=NORMAL")
            for statement in SCHEMA:
                db.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        return connect_private(self.path)

    def add(self, rows: Mapping[RowKey, Amount]) -> None:
        """Add a batch to the ledger's rows in one transaction."""
        with closing(self._connect()) as db, db:
            db.executemany(
                "INSERT INTO spend VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (hour, key_id, category, tier) DO UPDATE SET "
                "key_name = excluded.key_name, requests = requests + excluded.requests, "
                "prompt_tokens = prompt_tokens + excluded.prompt_tokens, "
                "completion_tokens = completion_tokens + excluded.completion_tokens, "
                "usd = usd + excluded.usd, top_usd = top_usd + excluded.top_usd",
                [(_iso(k.hour), k.key_id, a.key_name, k.category, k.tier, a.requests, a.prompt_tokens,
                  a.completion_tokens, a.usd, a.top_usd) for k, a in rows.items()],
            )

    def key_totals(self, now: datetime) -> dict[str, PeriodTotals]:
        """Every key's spend in the current UTC day and month (the budgets' running totals)."""
        return self._totals("key_id", now, "AND key_id != ''")

    def tier_totals(self, now: datetime) -> dict[str, PeriodTotals]:
        """Every tier's spend in the current UTC day and month, callers with and without keys."""
        return self._totals("tier", now)

    def category_tier_totals(self, now: datetime) -> dict[str, PeriodTotals]:
        """Each (category, tier)'s spend in the current UTC day and month, by `category_tier(c, t)`."""
        return self._totals("category || '/' || tier", now)

    def _totals(self, column: str, now: datetime, where: str = "") -> dict[str, PeriodTotals]:
        day, month = period_start("day", now), period_start("month", now)
        with closing(self._connect()) as db:
            rows = db.execute(
                f"SELECT {column}, SUM(CASE WHEN hour >= ? THEN usd ELSE 0 END), SUM(usd) FROM spend "
                f"WHERE hour >= ? {where} GROUP BY {column}", (_iso(day), _iso(month)),
            ).fetchall()
        return {name: PeriodTotals(day, month, day_usd, month_usd) for name, day_usd, month_usd in rows}

    def report(self, since: datetime, by: By | None = None) -> list[SpendLine]:
        """Spend from the hour holding `since` on, per `by` (None: one total line), largest first."""
        group = _GROUP[by] if by is not None else "''"
        with closing(self._connect()) as db:
            rows = db.execute(
                f"SELECT {group}, MAX(key_name), SUM(requests), SUM(prompt_tokens), SUM(completion_tokens), "
                f"SUM(usd), SUM(top_usd) FROM spend WHERE hour >= ? GROUP BY {group} ORDER BY SUM(usd) DESC, {group}",
                (_iso(hour_of(since)),),
            ).fetchall()
        return [
            SpendLine(g, Amount(int(r), int(p), int(c), float(u), float(t), key_name=name if by == "key" else ""))
            for g, name, r, p, c, u, t in rows
        ]

    def prune(self, older_than: datetime, max_rows: int) -> int:
        """Delete the hours before `older_than`, then all but the newest `max_rows` rows."""
        with closing(self._connect()) as db, db:
            removed = db.execute("DELETE FROM spend WHERE hour < ?", (_iso(hour_of(older_than)),)).rowcount
            removed += db.execute(
                "DELETE FROM spend WHERE rowid NOT IN (SELECT rowid FROM spend ORDER BY hour DESC LIMIT ?)",
                (max_rows,),
            ).rowcount
        return removed

    def rows(self) -> int:
        with closing(self._connect()) as db:
            return db.execute("SELECT COUNT(*) FROM spend").fetchone()[0]


def _iso(moment: datetime) -> str:
    return utc(moment).isoformat(timespec="seconds")


def sum_rows(rows: Sequence[Amount]) -> Amount:
    total = Amount()
    for amount in rows:
        total.add(amount)
    total.key_name = ""
    return total


def category_tier(category: str, tier: str) -> str:
    """The running-total name of a category's spend on a tier (as `category_tier_totals`)."""
    return f"{category}/{tier}"
