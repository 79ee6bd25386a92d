"""Shadow pairs become router outcome rows: large ok, small ok when the answers agree enough."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from router.data import OutcomeData
from router.flywheel import concat, parse_since, shadow_outcomes
from shadow.journal import ShadowPair

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def pair(agreement: float | None, primary: str = "large", shadow: str = "small",
         tags: dict[str, str] | None = None, prompt: str = "where is my refund") -> ShadowPair:
    return ShadowPair(
        request_id="r", tags=tags or {}, primary_target=primary, shadow_target=shadow, prompt=prompt,
        primary_text="5 days", shadow_text="five days", primary_latency_s=1.0, shadow_latency_s=0.2,
        agreement=agreement,
    )


# (case, pair, threshold, expected rows as (small_ok, category), or [] when skipped)
CASES = [
    ("agreement above threshold: small ok", pair(0.93), 0.8, [(1.0, None)]),
    ("agreement exactly at threshold: small ok", pair(0.8), 0.8, [(1.0, None)]),
    ("agreement just below threshold: small not ok", pair(0.7999), 0.8, [(0.0, None)]),
    ("threshold is a parameter", pair(0.85), 0.9, [(0.0, None)]),
    ("agreement not scored: skipped", pair(None), 0.8, []),
    ("adapter shadow counts as small", pair(0.9, shadow="small:refund@refund-v2"), 0.8, [(1.0, None)]),
    ("small primary is not a flywheel pair", pair(0.9, primary="small", shadow="large"), 0.8, []),
    ("adapter canary is not a flywheel pair",
     pair(0.9, primary="small:refund@v1", shadow="small:refund@v2"), 0.8, []),
    ("a tier merely prefixed 'small' is not small", pair(0.9, shadow="smallish"), 0.8, []),
    ("category carried", pair(0.2, tags={"category": "billing", "tier": "large"}), 0.8, [(0.0, "billing")]),
    ("empty category is no category", pair(0.9, tags={"category": ""}), 0.8, [(1.0, None)]),
]


@pytest.mark.parametrize(("case", "shadow_pair", "threshold", "expected"), CASES, ids=[c[0] for c in CASES])
def test_pair_becomes_a_row(case, shadow_pair, threshold, expected):
    rows = shadow_outcomes([shadow_pair], threshold).outcomes
    assert [(float(s), c) for s, c in zip(rows.small_ok, rows.categories)] == expected
    assert rows.large_ok.tolist() == [1.0] * len(expected)  # the large answer is the reference
    assert rows.prompts == [shadow_pair.prompt] * len(expected)


def test_rows_keep_order_and_report_their_share():
    pairs = [pair(0.9, prompt="a"), pair(None, prompt="b"), pair(0.1, prompt="c"),
             pair(0.95, primary="small", prompt="d"), pair(0.81, prompt="e")]
    rows = shadow_outcomes(pairs)
    assert rows.outcomes.prompts == ["a", "c", "e"]
    assert rows.outcomes.small_ok.dtype == np.float32
    assert rows.small_ok_share == pytest.approx(2 / 3)
    assert rows.summary() == {"rows": 3, "small_ok_share": pytest.approx(2 / 3), "threshold": 0.8}


def test_excluded_prompts_are_dropped_and_no_pairs_give_no_rows():
    assert shadow_outcomes([pair(0.9, prompt="leaked")], exclude=frozenset({"leaked"})).outcomes.prompts == []
    empty = shadow_outcomes([])
    assert len(empty.outcomes) == 0 and empty.small_ok_share is None


def test_concat_appends_rows():
    base = OutcomeData(prompts=["x"], small_ok=np.array([0.0], np.float32),
                       large_ok=np.array([0.0], np.float32), categories=["math"])
    both = concat(base, shadow_outcomes([pair(0.9, tags={"category": "refund"})]).outcomes)
    assert both.prompts == ["x", "where is my refund"] and both.categories == ["math", "refund"]
    assert both.small_ok.tolist() == [0.0, 1.0] and both.large_ok.tolist() == [0.0, 1.0]


@pytest.mark.parametrize(("value", "expected"), [
    ("30d", NOW - timedelta(days=30)),
    ("12h", NOW - timedelta(hours=12)),
    ("90m", NOW - timedelta(minutes=90)),
    ("2w", NOW - timedelta(weeks=2)),
    ("2026-02-01", datetime(2026, 2, 1, tzinfo=timezone.utc)),
    ("2026-02-01T03:00:00+02:00", datetime(2026, 2, 1, 1, tzinfo=timezone.utc)),
])
def test_parse_since(value, expected):
    assert parse_since(value, NOW) == expected


def test_parse_since_rejects_nonsense():
    with pytest.raises(ValueError, match="neither a duration"):
        parse_since("last tuesday", NOW)


class ExactGrader:
    """Passes the small answer when it equals the large one; cannot grade empty answers."""

    def __init__(self) -> None:
        self.seen = []

    def grade(self, items):
        self.seen.extend(items)
        return [None if not i.answer else float(i.answer == i.reference) for i in items]

    def counts(self):
        return {}


def test_a_grader_labels_pairs_instead_of_the_stored_agreement():
    same = pair(0.1).model_copy(update={"shadow_text": "5 days"})
    differ = pair(0.99)  # "five days" vs "5 days": the agreement says fine, the grader not
    unscored = pair(None).model_copy(update={"shadow_text": "5 days"})  # graded anyway
    ungradable = pair(0.9).model_copy(update={"shadow_text": ""})
    grader = ExactGrader()
    rows = shadow_outcomes([same, differ, unscored, ungradable, pair(0.9, primary="small")], grader=grader)
    assert rows.outcomes.small_ok.tolist() == [1.0, 0.0, 1.0]  # the ungradable pair is left out
    assert [i.reference for i in grader.seen] == ["5 days"] * 4  # the large answer is the reference
    assert grader.seen[0].target == "small"
