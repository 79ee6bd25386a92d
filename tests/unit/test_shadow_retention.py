"""The shadow store is bounded: rows past the retention age go, each table keeps at most
its newest `max_rows`, and the WAL is checkpointed so the files stop growing."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import datetime, timedelta, timezone

from shadow.journal import FeedbackRecord, RequestRecord, ShadowPair, Journal

NOW = datetime(2026, 11, 30, tzinfo=timezone.utc)


def pair(i: int, days_ago: float) -> ShadowPair:
    return ShadowPair(request_id=f"r{i}", created_at=NOW - timedelta(days=days_ago), primary_target="large",
                      shadow_target="small", prompt="p", primary_text="a", shadow_text="b",
                      primary_latency_s=1.0, shadow_latency_s=1.0, agreement=0.5)


def test_old_rows_go_and_each_table_is_capped(tmp_path):
    store = Journal(tmp_path / "shadow.sqlite")
    for i in range(10):
        store.add_pair(pair(i, days_ago=40 if i < 3 else 1))
        store.add_request(RequestRecord(request_id=f"r{i}", created_at=NOW - timedelta(days=40 if i < 3 else 1),
                                        target="large", prompt="p", draft="d"))
    store.add_feedback(FeedbackRecord(request_id="r9", created_at=NOW, rating=1))
    removed = store.prune(older_than=NOW - timedelta(days=30), max_rows=5)
    assert removed == {"pairs": 5, "requests": 5, "feedback": 0, "events": 0, "router_scores": 0, "flags": 0}
    assert store.rows() == {"pairs": 5, "requests": 5, "feedback": 1, "events": 0, "router_scores": 0, "flags": 0}
    assert {p.request_id for p in store.pairs()} == {"r5", "r6", "r7", "r8", "r9"}  # the newest stay


def test_the_wal_is_checkpointed(tmp_path):
    store = Journal(tmp_path / "shadow.sqlite")
    # A long-lived reader (the review export, another replica) keeps the WAL file open,
    # so closing the writer's connection does not checkpoint it.
    with closing(sqlite3.connect(store.path)) as reader:
        reader.execute("SELECT COUNT(*) FROM pairs").fetchone()
        for i in range(200):
            store.add_pair(pair(i, days_ago=0))
        wal = tmp_path / "shadow.sqlite-wal"
        assert wal.stat().st_size > 0
        store.prune(older_than=NOW - timedelta(days=30), max_rows=10)
        assert wal.stat().st_size == 0 and store.rows()["pairs"] == 10
