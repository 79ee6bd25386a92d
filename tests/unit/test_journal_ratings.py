"""The journal's answers and ratings as the canaries and the rollout count them: an answer is
never replaced, a key rates an answer once, a rated answer counts once (its newest rating),
and the categories a review reads are bounded and indexed."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import datetime, timedelta, timezone

import pytest

from shadow.journal import (
    NEWEST_RATING,
    AlreadyJournaled,
    AlreadyRated,
    FeedbackRecord,
    Journal,
    RequestRecord,
    _tag_of,
)
from support.config import RolloutConfig
from support.rollout import MAX_RATED_CATEGORIES, Rollout
from support.rollout_state import RolloutBook

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "shadow.sqlite")


def answer(rid: str, *, key: str | None = "alice", target: str = "small", category: str = "billing",
           mode: str = "draft", at: datetime = T0) -> RequestRecord:
    return RequestRecord(request_id=rid, created_at=at, target=target, prompt="q", draft="the draft", key_id=key,
                         tags={"tier": "small", "mode": mode, "rollout_category": category})


def test_an_answer_on_record_is_never_replaced(journal):
    journal.add_request(answer("r1", key="alice"))
    with pytest.raises(AlreadyJournaled):
        journal.add_request(answer("r1", key="mallory").model_copy(update={"draft": "overwritten"}))
    record = journal.request("r1")
    assert (record.key_id, record.draft) == ("alice", "the draft")


def test_a_key_rates_an_answer_once(journal):
    journal.add_request(answer("r1"))
    journal.add_feedback(FeedbackRecord(request_id="r1", rating=1, key_id="alice"))
    with pytest.raises(AlreadyRated):
        journal.add_feedback(FeedbackRecord(request_id="r1", rating=-1, key_id="alice"))
    journal.add_feedback(FeedbackRecord(request_id="r1", rating=1, key_id=None))  # open mode: one rater
    with pytest.raises(AlreadyRated):
        journal.add_feedback(FeedbackRecord(request_id="r1", rating=1, key_id=None))
    assert [(f.rating, f.key_id) for f in journal.feedback("r1")] == [(1, "alice"), (1, None)]


def test_a_rated_answer_counts_once_by_its_newest_rating(journal):
    journal.add_request(answer("r1", target="small:refund@v2"))
    journal.add_request(answer("r2", target="small:refund@v2"))
    for i, (rating, match) in enumerate([(1, 1.0), (1, 1.0), (-1, 0.0)]):  # the owner, then two admins
        journal.add_feedback(FeedbackRecord(request_id="r1", created_at=T0, rating=rating, match=match, key_id=f"k{i}"))
    journal.add_feedback(FeedbackRecord(request_id="r2", created_at=T0, rating=1, key_id="alice"))
    ratings = journal.ratings({"rollout_category": "billing", "mode": "draft"}, match_at=0.9)
    assert (ratings.n, ratings.negative, ratings.with_sent, ratings.matched) == (2, 1, 1, 0)
    rate = journal.negative_rate("small:refund@v2")
    assert (rate.n, rate.mean) == (2, 0.5)


def test_fifty_ratings_of_one_draft_do_not_clear_a_gate(journal, tmp_path):
    journal.add_request(answer("r1"))
    for i in range(50):
        journal.add_feedback(FeedbackRecord(request_id="r1", created_at=T0, rating=1, match=1.0, key_id=f"k{i}"))
    config = RolloutConfig.model_validate({"categories": {"billing": "draft"}})
    rollout = Rollout(RolloutBook(tmp_path / "state.json"), journal, clock=lambda: T0 + timedelta(hours=1))
    status = rollout.category_status(config, "billing")
    assert status.drafts.n == 1 and not status.promotion.cleared


def test_a_review_reads_a_bounded_number_of_client_categories(journal, tmp_path):
    for i in range(MAX_RATED_CATEGORIES + 20):
        journal.add_request(answer(f"r{i}", category=f"made-up-{i:03d}"))
        journal.add_feedback(FeedbackRecord(request_id=f"r{i}", created_at=T0, rating=1, key_id="alice"))
    journal.add_request(answer("popular-2", category="made-up-999"))  # the most rated: kept
    journal.add_feedback(FeedbackRecord(request_id="popular-2", created_at=T0, rating=1, key_id="alice"))
    journal.add_request(answer("popular-1", category="made-up-999"))
    journal.add_feedback(FeedbackRecord(request_id="popular-1", created_at=T0, rating=1, key_id="alice"))
    config = RolloutConfig.model_validate({"categories": {"billing": "draft", "orders": "auto"}})
    rollout = Rollout(RolloutBook(tmp_path / "state.json"), journal, clock=lambda: T0 + timedelta(hours=1))
    names = [s.category for s in rollout.status(config)]
    assert len(names) <= MAX_RATED_CATEGORIES + 2
    assert {"billing", "orders", "made-up-999"} <= set(names)
    assert journal.rated_tag_values("rollout_category", limit=2)[0] == "made-up-999"


def test_a_category_s_figures_are_one_index_range(journal):
    query = (
        "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM requests r JOIN feedback f ON f.request_id = r.request_id "
        f"WHERE r.created_at >= ? AND {_tag_of('r.tags', 'rollout_category')} = ? AND {NEWEST_RATING}"
    )
    with closing(sqlite3.connect(journal.path)) as db:
        plan = " ".join(str(row) for row in db.execute(query, ("", "billing")))
    assert "USING INDEX requests_rollout" in plan


@pytest.mark.parametrize("key", ["a'b", 'a"b', "a) OR 1=1 --", "", "x" * 101])
def test_a_tag_key_is_never_written_into_sql_unchecked(key):
    with pytest.raises(ValueError):
        _tag_of("r.tags", key)


def test_a_journal_of_an_older_gateway_is_brought_up_to_date(tmp_path):
    path = tmp_path / "old.sqlite"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE requests (request_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, "
                   "target TEXT NOT NULL, tags TEXT NOT NULL, prompt TEXT NOT NULL, draft TEXT NOT NULL)")
        db.execute("CREATE TABLE feedback (request_id TEXT NOT NULL, created_at TEXT NOT NULL, "
                   "rating INTEGER NOT NULL, sent_text TEXT, comment TEXT, match REAL)")
        db.execute("INSERT INTO requests VALUES ('r1', ?, 'small', '{}', 'q', 'd')", (T0.isoformat(),))
        for rating in (1, -1, -1):  # one draft rated three times, before one rating per key
            db.execute("INSERT INTO feedback VALUES ('r1', ?, ?, NULL, NULL, NULL)", (T0.isoformat(), rating))
    journal = Journal(path)
    assert journal.request("r1").key_id is None
    assert [f.rating for f in journal.feedback("r1")] == [1]  # the first stays
    with pytest.raises(AlreadyRated):
        journal.add_feedback(FeedbackRecord(request_id="r1", rating=-1))
    Journal(path)  # opening it again changes nothing
    assert [f.rating for f in journal.feedback("r1")] == [1]
