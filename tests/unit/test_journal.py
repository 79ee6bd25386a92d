"""Shadow pairs and decision events survive in SQLite (WAL), newest first, sampled reproducibly."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

from shadow.journal import ShadowEvent, ShadowPair, Journal


def pair(i: int, at: datetime) -> ShadowPair:
    return ShadowPair(
        request_id=f"req-{i}", created_at=at, tags={"tier": "large", "category": "refund"},
        primary_target="large", shadow_target="small:refund-v2", prompt=f"question {i}",
        primary_text="Refunds take 5 days.", shadow_text="It takes five days.",
        primary_latency_s=1.5, shadow_latency_s=0.4, agreement=0.8,
    )


def test_pairs_round_trip_newest_first_and_since(tmp_path):
    store = Journal(tmp_path / "shadow.sqlite")
    now = datetime.now(timezone.utc)
    for i in range(5):
        store.add_pair(pair(i, now - timedelta(hours=i * 10)))
    again = Journal(tmp_path / "shadow.sqlite")  # a second process sees the same rows
    assert [p.request_id for p in again.pairs()] == [f"req-{i}" for i in range(5)]
    recent = again.pairs(since=now - timedelta(days=1))
    assert [p.request_id for p in recent] == ["req-0", "req-1", "req-2"]
    assert recent[0] == pair(0, now) and recent[0].length_delta == -1


def test_sample_is_reproducible_and_bounded(tmp_path):
    store = Journal(tmp_path / "shadow.sqlite")
    now = datetime.now(timezone.utc)
    for i in range(30):
        store.add_pair(pair(i, now - timedelta(minutes=i)))
    first = [p.request_id for p in store.sample(5, seed=7)]
    assert first == [p.request_id for p in store.sample(5, seed=7)] and len(set(first)) == 5
    assert len(store.sample(100)) == 30


def test_events_are_kept_in_order_per_subject(tmp_path):
    store = Journal(tmp_path / "shadow.sqlite")
    store.add_event(ShadowEvent(kind="canary_started", subject="refund-v3", detail={"min_samples": 50}))
    store.add_event(ShadowEvent(kind="canary_rejected", subject="refund-v3", detail={"agreement_drop": 0.12}))
    store.add_event(ShadowEvent(kind="canary_started", subject="order-v2"))
    kinds = [e.kind for e in store.events("refund-v3")]
    assert kinds == ["canary_started", "canary_rejected"]
    assert store.events("refund-v3")[1].detail == {"agreement_drop": 0.12}
    assert len(store.events()) == 3


def test_store_uses_wal(tmp_path):
    Journal(tmp_path / "shadow.sqlite")
    with sqlite3.connect(tmp_path / "shadow.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
