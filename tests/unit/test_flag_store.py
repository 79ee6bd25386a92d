"""Flags in the shadow store: written in one transaction, read back by time and kind,
pruned by the store's retention like every other table."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flags.store import FlagRecord
from shadow.journal import Journal

NOW = datetime(2026, 11, 30, tzinfo=timezone.utc)


def flag(request_id: str, kind: str, days_ago: float) -> FlagRecord:
    return FlagRecord(request_id=request_id, created_at=NOW - timedelta(days=days_ago), category="refund",
                      tier="small", kind=kind, detail="d", score=0.5)


def test_flags_are_read_by_time_and_kind_and_pruned(tmp_path):
    store = Journal(tmp_path / "shadow.sqlite")
    store.add_flags([flag("a", "pii", 40), flag("b", "tone", 2), flag("c", "pii", 1)])
    store.add_flags([])
    assert [f.request_id for f in store.flags()] == ["c", "b", "a"]
    assert [f.request_id for f in store.flags(since=NOW - timedelta(days=3))] == ["c", "b"]
    assert [f.request_id for f in store.flags(kinds=["pii"], limit=1)] == ["c"]
    assert store.prune(older_than=NOW - timedelta(days=30), max_rows=1)["flags"] == 2
    assert [f.request_id for f in store.flags()] == ["c"]


def test_a_long_category_is_stored_cut_to_64_characters(tmp_path):
    store = Journal(tmp_path / "shadow.sqlite")
    store.add_flags([FlagRecord(request_id="a", category="x" * 10_000, tier="small", kind="pii", detail="d")])
    assert [f.category for f in store.flags()] == ["x" * 64]
