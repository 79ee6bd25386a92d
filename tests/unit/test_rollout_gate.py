"""The rollout's promotion gate and guardrail: pure, table-driven."""

from __future__ import annotations

import pytest

from support.config import PromotionGate
from support.ratings import Ratings
from support.rollout_gate import guardrail_breached, promotion_gate

GATE = PromotionGate(min_samples=10, min_match=0.8, max_negative=0.1)


@pytest.mark.parametrize("ratings, cleared, why", [
    (Ratings(n=10, negative=0, with_sent=10, matched=9), True, "10 rated drafts >= 10, match rate 0.90 >= 0.80"),
    (Ratings(n=9, negative=0, with_sent=9, matched=9), False, "9 rated drafts < 10"),
    (Ratings(n=10, negative=0, with_sent=0, matched=0), False, "no draft rated with the text sent"),
    (Ratings(n=10, negative=0, with_sent=10, matched=7), False, "match rate 0.70 < 0.80"),
    (Ratings(n=10, negative=1, with_sent=10, matched=10), False, "negative share 0.10 >= 0.10"),
    (Ratings(n=20, negative=1, with_sent=5, matched=4), True, "negative share 0.05 < 0.10"),
])
def test_promotion_gate(ratings, cleared, why):
    result = promotion_gate(ratings, GATE)
    assert result.cleared is cleared
    assert why in result.why


def test_every_unmet_condition_is_named():
    result = promotion_gate(Ratings(n=4, negative=2, with_sent=4, matched=1), GATE)
    assert result.why == "4 rated drafts < 10; match rate 0.25 < 0.80; negative share 0.50 >= 0.10"


@pytest.mark.parametrize("ratings, breached, why", [
    (Ratings(n=19, negative=19), False, "19 rated answers < 20"),
    (Ratings(n=20, negative=4), True, "negative share 0.20 >= guardrail 0.20 over 20 rated answers"),
    (Ratings(n=40, negative=7), False, "negative share 0.17 < guardrail 0.20"),
])
def test_guardrail(ratings, breached, why):
    result = guardrail_breached(ratings, 0.2, 20)
    assert result.breached is breached and result.why == why


def test_ratings_shares():
    assert Ratings().negative_share is None and Ratings().match_rate is None
    dumped = Ratings(n=4, negative=1, with_sent=2, matched=1).model_dump()
    assert dumped["negative_share"] == 0.25 and dumped["match_rate"] == 0.5
