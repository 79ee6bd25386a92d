"""Three tiers on the real app (two embedded vLLM tiers and a remote vLLM server, the official
client): `auto` picks each of the three by the learned router's score, a cascade escalates
large > frontier, and the spend counters add up to the usage the client saw, per tier."""

from __future__ import annotations

import re

import pytest

from tests.e2e_tiers.conftest import ESCALATE, FRONTIER, FRONTIER_CUT, FRONTIER_MODEL, LARGE_CUT

pytestmark = pytest.mark.e2e

# Two prompts a band, scored by the default router (measured 2026-12-06, static MiniLM router):
# ~0.08 and ~0.11 (small), ~0.17 and ~0.20 (large), ~0.23 and ~0.25 (frontier).
PROMPTS = [
    "What is the capital of France?",
    "Say hello.",
    "What is 2+2?",
    "Prove that the square root of 2 is irrational, step by step.",
    "A 45-year-old man presents with chest pain radiating to the left arm, diaphoresis and ST elevation "
    "in leads II, III and aVF. Which coronary artery is most likely occluded?",
    "Compute the eigenvalues of the matrix [[2,1],[1,2]] and explain their geometric meaning.",
]


def ask(client, text: str, **extra):
    return client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": text}], max_tokens=8, temperature=0,
        extra_body={"grounding": False, **extra},
    )


def band(score: float) -> str:
    return FRONTIER if score >= FRONTIER_CUT else "large" if score >= LARGE_CUT else "small"


def spend(http) -> dict[tuple[str, str], float]:
    """gateway_spend_tokens_total per (tier, kind), summed over categories."""
    totals: dict[tuple[str, str], float] = {}
    pattern = r'^gateway_spend_tokens_total\{([^}]*)\} ([0-9.e+-]+)$'
    for labels, value in re.findall(pattern, http.get("/metrics").text, re.M):
        named = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        key = (named["tier"], named["kind"])
        totals[key] = totals.get(key, 0.0) + float(value)
    return totals


def test_auto_picks_each_of_three_tiers_by_the_routers_score_and_spend_adds_up(client, http):
    before, seen, usage = spend(http), set(), {}
    for text in PROMPTS:
        raw = ask(client, text)
        completion, headers = raw.parse(), raw.headers
        tier, score = headers["x-gateway-tier"], float(headers["x-gateway-route-score"])
        assert tier == band(score), (text, dict(headers))
        assert completion.model == {"frontier": FRONTIER_MODEL}.get(tier, completion.model)
        assert completion.choices[0].message.content is not None
        seen.add(tier)
        prompt, out = usage.get(tier, (0, 0))
        usage[tier] = (prompt + completion.usage.prompt_tokens, out + completion.usage.completion_tokens)
    assert seen == {"small", "large", FRONTIER}
    after = spend(http)
    for tier, (prompt, out) in usage.items():
        assert after.get((tier, "prompt"), 0) - before.get((tier, "prompt"), 0) == prompt
        assert after.get((tier, "completion"), 0) - before.get((tier, "completion"), 0) == out


def test_a_cascade_escalates_from_large_to_the_frontier_tier(client, http):
    before = spend(http)
    raw = ask(client, "How do I reset my password?", metadata={"category": ESCALATE})
    completion, headers = raw.parse(), raw.headers
    assert headers["x-gateway-cascade"] == f"large>{FRONTIER}", dict(headers)
    assert (headers["x-gateway-tier"], headers["x-gateway-route-reason"]) == (FRONTIER, "cascade:escalated")
    assert completion.model == FRONTIER_MODEL
    after = spend(http)
    # Both answers are charged, each to the tier that gave it; the client's usage is their sum.
    large = after.get(("large", "completion"), 0) - before.get(("large", "completion"), 0)
    top = after.get((FRONTIER, "completion"), 0) - before.get((FRONTIER, "completion"), 0)
    assert large > 0 and top > 0 and large + top == completion.usage.completion_tokens


def test_the_three_tiers_are_listed_and_the_third_is_pinnable(client):
    ids = {model.id for model in client.models.list().data}
    assert {"auto", "small", "large", FRONTIER, FRONTIER_MODEL} <= ids
    raw = client.chat.completions.with_raw_response.create(
        model=FRONTIER, messages=[{"role": "user", "content": "Say hello."}], max_tokens=4,
        extra_body={"grounding": False},
    )
    assert raw.headers["x-gateway-tier"] == FRONTIER and raw.parse().model == FRONTIER_MODEL
