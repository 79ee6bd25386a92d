"""The rollout over a real journal (SQLite in tmp_path): figures per category and mode,
counted from when the category entered its mode; manual and automatic changes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from support.config import RolloutConfig
from support.errors import GateNotCleared
from support.rollout import Rollout
from support.rollout_state import RolloutBook
from shadow.journal import FeedbackRecord, RequestRecord, Journal

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path):
    return Journal(tmp_path / "shadow.sqlite")


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def rollout(tmp_path, store, clock):
    return Rollout(RolloutBook(tmp_path / "state.json", clock=clock), store, clock=clock)


def served(store, rid, category, mode, at, rating=None, match_text=None, draft="the draft"):
    store.add_request(RequestRecord(
        request_id=rid, created_at=at, target="small", prompt="q", draft=draft,
        tags={"tier": "small", "mode": mode, "rollout_category": category},
    ))
    if rating is not None:
        match = None if match_text is None else float(match_text == draft)
        store.add_feedback(FeedbackRecord(request_id=rid, created_at=at, rating=rating,
                                          sent_text=match_text, match=match))


CONFIG = RolloutConfig.model_validate({
    "default_mode": "draft", "categories": {"Billing": "draft", "orders": "auto"},
    "promotion_gate": {"min_samples": 3, "min_match": 0.6, "max_negative": 0.4, "window_days": 7},
    "demote_min_samples": 2, "demote_negative": 0.5,
})


def test_config_keys_are_one_spelling():
    assert CONFIG.categories == {"billing": "draft", "orders": "auto"}
    assert CONFIG.initial_mode("billing") == "draft" and CONFIG.initial_mode(None) == "draft"


def test_store_ratings_filter_by_tags_and_time(store):
    served(store, "1", "billing", "draft", T0, 1, "the draft")
    served(store, "2", "billing", "draft", T0, -1, "rewritten")
    served(store, "3", "billing", "auto", T0, -1)
    served(store, "4", "orders", "draft", T0, 1)
    served(store, "5", "billing", "draft", T0 - timedelta(days=30), 1, "the draft")
    ratings = store.ratings({"rollout_category": "billing", "mode": "draft"}, T0 - timedelta(days=1), 0.9)
    assert (ratings.n, ratings.negative, ratings.with_sent, ratings.matched) == (2, 1, 2, 1)
    assert store.rated_tag_values("rollout_category", T0 - timedelta(days=1)) == ["billing", "orders"]


def test_status_lists_configured_changed_and_rated_categories(rollout, store, clock):
    served(store, "1", "returns", "draft", T0 - timedelta(hours=1), 1, "the draft")
    clock.now = T0
    names = {s.category: s.mode for s in rollout.status(CONFIG, also=["Gifts"])}
    assert names == {"billing": "draft", "orders": "auto", "returns": "draft", "gifts": "draft"}


def test_promotion_counts_only_drafts_since_the_category_entered_draft(rollout, store, clock):
    for i in range(3):
        served(store, f"old{i}", "billing", "draft", T0 + timedelta(minutes=i), 1, "the draft")
    clock.now = T0 + timedelta(hours=1)
    assert rollout.category_status(CONFIG, "billing").promotion.cleared
    rollout.change(CONFIG, "billing", "off", by="ops", promote=False)
    rollout.change(CONFIG, "billing", "draft", by="ops", promote=True)  # re-entered draft: earn it again
    status = rollout.category_status(CONFIG, "billing")
    assert status.drafts.n == 0 and not status.promotion.cleared
    for i in range(3):
        served(store, f"new{i}", "billing", "draft", clock.now + timedelta(minutes=i + 1), 1, "the draft")
    clock.now += timedelta(hours=1)
    assert rollout.category_status(CONFIG, "billing").promotion.cleared


def test_manual_promotion_to_auto_needs_the_gate_unless_forced(rollout):
    with pytest.raises(GateNotCleared, match="0 rated drafts < 3"):
        rollout.change(CONFIG, "billing", None, by="ops", promote=True)
    status, event = rollout.change(CONFIG, "billing", None, by="ops", promote=True, force=True, note="launch")
    assert status.mode == "auto" and event.evidence["forced"] is True and event.note == "launch"
    _, again = rollout.change(CONFIG, "billing", None, by="ops", promote=True)  # auto is the top
    assert again is None


def test_demote_steps_down_and_stops_at_off(rollout):
    modes = [rollout.change(CONFIG, "orders", None, by="ops", promote=False)[0].mode for _ in range(3)]
    assert modes == ["draft", "off", "off"]


def test_review_promotes_cleared_drafts_and_demotes_over_the_guardrail(tmp_path, store, clock):
    changes = []
    rollout = Rollout(RolloutBook(tmp_path / "state.json", clock=clock), store, clock=clock,
                      on_change=changes.append)
    config = CONFIG.model_copy(update={"auto_promote": True, "auto_demote": True})
    for i in range(3):
        served(store, f"b{i}", "billing", "draft", T0 - timedelta(hours=1), 1, "the draft")
    served(store, "o1", "orders", "auto", T0 - timedelta(hours=1), -1)
    served(store, "o2", "orders", "auto", T0 - timedelta(hours=1), -1)
    clock.now = T0
    events = rollout.review(config)
    assert {(e.category, e.to_mode, e.reason) for e in events} == {
        ("billing", "auto", "auto_promote"), ("orders", "draft", "auto_demote")}
    assert changes == events
    assert all(e.by == "replica" and e.evidence for e in events)
    clock.now = T0 + timedelta(minutes=5)
    assert rollout.review(config) == []  # nothing new since the changes: no flapping


def test_review_does_nothing_unless_enabled(rollout, store, clock):
    for i in range(3):
        served(store, f"b{i}", "billing", "draft", T0 - timedelta(hours=1), 1, "the draft")
    clock.now = T0
    assert rollout.review(CONFIG) == []
