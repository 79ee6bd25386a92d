"""Cascades on the real app (real vLLM tiers, the official client): the small tier's answer
comes back with real token logprobs, the verdict reads them, a weak answer escalates to the
large tier, and the spend counters add up to the usage the client saw."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import CASCADE_CONFIG

EASY = "How do I reset my password?"
CATEGORY = CASCADE_CONFIG["categories"][0]  # routed small (a category override), always escalates


def spend_tokens(http) -> float:
    text = http.get("/metrics").text
    return sum(float(v) for v in re.findall(r'^gateway_spend_tokens_total\{[^}]*\} ([0-9.e+-]+)$', text, re.M))


def ask(client, **extra):
    return client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": EASY}], max_tokens=12, temperature=0,
        extra_body={"grounding": False, **extra},
    )


def test_a_cascaded_category_escalates_a_weak_answer_and_charges_both_tiers(client, http):
    before = spend_tokens(http)
    raw = ask(client, metadata={"category": CATEGORY})
    completion, headers = raw.parse(), raw.headers
    after = spend_tokens(http)
    assert headers["x-gateway-cascade"] == "small>large", dict(headers)
    assert (headers["x-gateway-tier"], headers["x-gateway-route-reason"]) == ("large", "cascade:escalated")
    verdict = re.fullmatch(r"mean_logprob=(-?[0-9.e+-]+)<0\.5", headers["x-gateway-cascade-verdict"])
    assert verdict and float(verdict.group(1)) < 0  # a real answer's logprobs, not a made-up number
    assert completion.choices[0].message.content and completion.choices[0].logprobs is None
    # Both answers' tokens: both tiers read the prompt, so more than the large tier alone counts.
    alone = client.chat.completions.create(
        model="large", messages=[{"role": "user", "content": EASY}], max_tokens=1, extra_body={"grounding": False},
    )
    assert completion.usage.prompt_tokens > alone.usage.prompt_tokens
    assert after - before == pytest.approx(completion.usage.total_tokens)


def test_the_clients_logprobs_come_back_as_asked_and_an_ordinary_request_is_not_cascaded(client):
    asked = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": EASY}], max_tokens=12, temperature=0,
        logprobs=True, top_logprobs=1, extra_body={"grounding": False, "metadata": {"category": CATEGORY}},
    )
    assert asked.headers["x-gateway-cascade"] == "small>large"
    tokens = asked.parse().choices[0].logprobs.content
    assert tokens and all(len(t.top_logprobs) == 1 for t in tokens)  # as the client asked, not the probe's 2
    assert "x-gateway-cascade" not in ask(client).headers
    assert "x-gateway-cascade" not in ask(client, metadata={"category": CATEGORY}, cascade=False).headers


def test_a_pinned_model_asking_for_a_cascade_is_a_400_naming_it(client):
    import openai

    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="small", messages=[{"role": "user", "content": EASY}], max_tokens=4, extra_body={"cascade": True},
        )
    assert raised.value.body["param"] == "cascade"
