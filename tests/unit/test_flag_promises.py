"""Promises the policy does not allow: amounts above its maximum, durations outside its
allowed turnarounds, dates, guarantees; informative sentences and negated guarantees pass."""

from __future__ import annotations

import pytest

from flags.config import PromisePolicy
from flags.durations import parse_span, spans
from flags.promises import PromiseEvaluator
from flags.types import Answer

POLICY = PromisePolicy(max_refund_amount=100, allowed_durations=["5-10 business days", "24-48 hours"])


def details(text: str, policy: PromisePolicy = POLICY) -> list[str]:
    return [f.detail for f in PromiseEvaluator(policy).evaluate(Answer(request_id="r", text=text))]


def test_a_refund_above_the_maximum_and_a_fast_turnaround_are_flagged():
    found = details("We will refund you $500 within 2 hours.")
    assert len(found) == 2
    assert found[0].startswith("amount: promised $500") and "maximum 100" in found[0]
    assert found[1].startswith("duration: promised '2 hours'")


@pytest.mark.parametrize("text", [
    "You will receive a refund of $80 in 5-7 business days.",  # amount and span inside the policy
    "Refunds usually take 3 days.",  # informs, commits nothing
    "Our agents are available 24 hours a day and will gladly help.",  # a frequency, not a turnaround
    "We will look into it within 48 hours.",  # inside 24-48 hours
    "I can't guarantee that the package arrives before the holiday.",  # a negated guarantee
    "The invoice total was $900.",  # an amount, but no refund promised
])
def test_answers_the_policy_allows_are_not_flagged(text):
    assert details(text) == []


@pytest.mark.parametrize("text, start", [
    ("Your refund is guaranteed!", "guarantee: 'guaranteed'"),
    ("We will ship the replacement by Monday.", "date: promised 'by Monday'"),
    ("You'll get your money back immediately.", "duration: promised 'immediately'"),
    ("We will credit your account with USD 1,200.", "amount: promised USD 1,200"),
    ("We'll compensate you 250 dollars.", "amount: promised 250 dollars"),
    ("The new card will arrive in twelve hours.", "duration: promised 'twelve hours'"),
])
def test_each_kind_of_promise_is_flagged(text, start):
    found = details(text)
    assert len(found) == 1 and found[0].startswith(start), found


def test_the_policy_decides_not_the_rule():
    text = "We will refund you $500 by Monday."
    generous = PromisePolicy(max_refund_amount=1000, allow_dates=True)
    assert details(text, generous) == []
    assert len(details(text, PromisePolicy())) == 2  # the default policy promises no amount, no date


def test_durations_parse_ranges_words_and_instants():
    assert [(s.low, s.high) for s in spans("in 3-5 business days or a week")] == [(72, 120), (168, 168)]
    assert [(s.low, s.high) for s in spans("right away, or by end of day")] == [(0, 0), (0, 24)]
    assert parse_span("5-10 business days").within(parse_span("1-2 weeks")) is False
    assert parse_span("7 days").within(parse_span("5-10 business days"))


def test_a_policy_duration_that_does_not_parse_is_rejected():
    with pytest.raises(ValueError, match="soon"):
        PromisePolicy(allowed_durations=["soon"])
