"""Cascades through the HTTP edge (fake engines, whose every token has logprob -0.5): the
router's tier answers first with logprobs, a confident answer is kept, a weak one escalates;
headers, usage, spend and metrics say what happened, and what cannot cascade is refused."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from gateway.assembly import Tiers, build_gateway
from gateway.catalog import TierSpec
from gateway.live_config import LiveConfig
from gateway.settings import LimitSettings

CHAT, RESPONSES = "/v1/chat/completions", "/v1/responses"
PRICES = {
    "small": {"input_per_million": 100_000.0, "output_per_million": 300_000.0},
    "large": {"input_per_million": 1_000_000.0, "output_per_million": 2_000_000.0},
}
KEEP, ESCALATE = -0.6, -0.4  # thresholds either side of the fake's -0.5


@pytest.fixture
def gateway(engines):
    tiers = {"small": TierSpec(served_name="tiny", max_model_len=64), "large": TierSpec(served_name="big", max_model_len=128)}
    gateway = build_gateway(Tiers(engines, tiers), LimitSettings())
    configure(gateway, ["*"], ESCALATE)
    return gateway


def configure(gateway, categories: list[str], threshold: float, signal: str = "mean_logprob") -> None:
    assert gateway.reconfigure(LiveConfig.parse({
        "routing": {"policy": "baseline"},  # auto: a short prompt goes small
        "spend": {"prices": PRICES},
        "cascade": {"categories": categories, "threshold": threshold, "signal": signal},
    }).model_dump(mode="json"))


@pytest.fixture
def client(gateway):
    with TestClient(gateway.app, raise_server_exceptions=False) as client:
        yield client


def chat(model="auto", **extra):
    return {"model": model, "messages": [{"role": "user", "content": "hello there world"}], "max_tokens": 4, **extra}


def metric(gateway, name, **labels) -> float:
    return gateway.metrics.registry.get_sample_value(name, labels) or 0.0


def events(response) -> list[dict]:
    lines = [line[len("data: "):] for line in response.text.splitlines() if line.startswith("data: ")]
    return [json.loads(line) for line in lines if line != "[DONE]"]


def test_a_weak_answer_escalates_and_the_client_sees_the_upper_tiers_answer_and_both_usages(client, gateway, engines):
    response = client.post(CHAT, json=chat())
    assert response.status_code == 200, response.text
    h = response.headers
    assert (h["x-gateway-tier"], h["x-gateway-route-reason"], h["x-gateway-cascade"]) == ("large", "cascade:escalated", "small>large")
    assert h["x-gateway-cascade-verdict"] == "mean_logprob=-0.5<-0.4"
    body = response.json()
    assert body["model"] == "big" and body["choices"][0]["logprobs"] is None
    # The small tier was asked for logprobs (two alternatives: the margin needs them); the large one was not.
    (small,), (large,) = engines["small"].seen, engines["large"].seen
    assert small.agentic.logprobs == 2 and large.agentic.logprobs is None and large.adapter is None
    assert body["usage"]["completion_tokens"] == 8 and body["usage"]["prompt_tokens"] == 6  # 4 + 4, 3 + 3
    assert metric(gateway, "gateway_cascade_total", first_tier="small", outcome="escalated", signal="mean_logprob") == 1


def test_a_confident_answer_is_kept_without_the_logprobs_the_client_did_not_ask(client, gateway, engines):
    configure(gateway, ["*"], KEEP)
    response = client.post(CHAT, json=chat())
    h = response.headers
    assert (h["x-gateway-tier"], h["x-gateway-cascade"], h["x-gateway-cascade-verdict"]) == ("small", "small", "mean_logprob=-0.5>=-0.6")
    assert h["x-gateway-route-reason"] != "cascade:escalated"
    assert response.json()["choices"][0]["logprobs"] is None and response.json()["usage"]["completion_tokens"] == 4
    assert engines["large"].seen == []
    assert metric(gateway, "gateway_cascade_total", first_tier="small", outcome="kept", signal="mean_logprob") == 1


def test_the_clients_own_logprobs_come_back_as_asked(client, gateway):
    configure(gateway, ["*"], KEEP)
    response = client.post(CHAT, json=chat(logprobs=True, top_logprobs=1))
    content = response.json()["choices"][0]["logprobs"]["content"]
    assert len(content) == 4 and all(len(token["top_logprobs"]) == 1 for token in content)


def test_the_margin_can_be_the_signal(client, gateway):
    configure(gateway, ["*"], 0.5, signal="mean_margin")  # the fake's alternatives: -1.0, -2.0 -> margin 1.0
    assert client.post(CHAT, json=chat()).headers["x-gateway-cascade"] == "small"
    configure(gateway, ["*"], 1.5, signal="mean_margin")
    assert client.post(CHAT, json=chat()).headers["x-gateway-cascade"] == "small>large"


@pytest.mark.parametrize("categories, asked, cascades", [
    ([], None, False), ([], True, True), (["*"], False, False), (["billing"], None, True), (["refund"], None, False),
])
def test_the_request_or_its_category_decides_whether_it_cascades(client, gateway, categories, asked, cascades):
    configure(gateway, categories, ESCALATE)
    extra = {"metadata": {"category": "Billing"}} | ({} if asked is None else {"cascade": asked})
    response = client.post(CHAT, json=chat(**extra))
    assert response.status_code == 200, response.text
    assert ("x-gateway-cascade" in response.headers) == cascades


def test_a_pinned_model_never_cascades_and_asking_it_to_is_refused(client, gateway):
    assert "x-gateway-cascade" not in client.post(CHAT, json=chat("small")).headers
    response = client.post(CHAT, json=chat("small", cascade=True))
    assert response.status_code == 400 and response.json()["error"]["param"] == "cascade"


@pytest.mark.parametrize("extra", [
    {"n": 2},
    {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}], "tool_choice": "required"},
])
def test_what_a_cascade_cannot_judge_is_refused_when_asked_and_served_plainly_by_config(client, gateway, extra):
    response = client.post(CHAT, json=chat(cascade=True, **extra))
    assert response.status_code == 400 and response.json()["error"]["param"] == "cascade"
    served = client.post(CHAT, json=chat(**extra))
    assert served.status_code == 200 and "x-gateway-cascade" not in served.headers


def test_an_escalated_stream_is_the_upper_tiers_and_its_usage_counts_both(client, gateway, engines):
    response = client.post(CHAT, json=chat(stream=True, stream_options={"include_usage": True}))
    assert response.headers["x-gateway-cascade"] == "small>large"
    chunks = events(response)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "hello there world hello" and chunks[-1]["usage"]["completion_tokens"] == 8
    assert engines["large"].running == set()  # the stream was closed


def test_a_kept_stream_is_the_held_answer(client, gateway, engines):
    configure(gateway, ["*"], KEEP)
    response = client.post(CHAT, json=chat(stream=True, stream_options={"include_usage": True}))
    assert response.headers["x-gateway-cascade"] == "small"
    chunks = events(response)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "hello there world hello" and chunks[-1]["usage"]["completion_tokens"] == 4
    assert engines["large"].seen == []


def test_spend_charges_each_tier_its_own_part_and_adds_up_to_the_clients_usage(client, gateway):
    usage = client.post(CHAT, json=chat()).json()["usage"]
    small = metric(gateway, "gateway_spend_usd_total", tier="small", category="")
    large = metric(gateway, "gateway_spend_usd_total", tier="large", category="")
    assert small == pytest.approx((3 * 100_000 + 4 * 300_000) / 1e6)
    assert large == pytest.approx((3 * 1_000_000 + 4 * 2_000_000) / 1e6)
    tokens = sum(
        metric(gateway, "gateway_spend_tokens_total", tier=tier, category="", kind=kind)
        for tier in ("small", "large") for kind in ("prompt", "completion")
    )
    assert tokens == usage["total_tokens"]


def test_the_responses_api_cascades_too(client):
    response = client.post(RESPONSES, json={"model": "auto", "input": "hello world", "max_output_tokens": 3, "cascade": True})
    assert response.status_code == 200, response.text
    assert response.headers["x-gateway-cascade"] == "small>large"


def test_a_tiers_learned_verifier_judges_its_answers_and_a_missing_file_falls_back(client, gateway, tmp_path):
    """The fake's answers all read the same; a verifier trained so that such an answer needs the
    upper tier escalates it whatever the logprob bar says (KEEP would keep it)."""
    import numpy as np

    from cascade.verifier import FEATURES, fit_verifier, save_verifier

    rng = np.random.default_rng(0)
    numbers = rng.normal(size=(200, len(FEATURES)))
    numbers[:, FEATURES.index("mean_logprob")] = np.where(np.arange(200) % 2, -0.5, -5.0)
    label = (np.arange(200) % 2).astype(float)  # -0.5 (the fake's): the upper answer is better
    save_verifier(fit_verifier(numbers, [None] * 200, label), tmp_path / "small.json")

    def push(path):
        assert gateway.reconfigure(LiveConfig.parse({
            "routing": {"policy": "baseline"}, "spend": {"prices": PRICES},
            "cascade": {"categories": ["*"], "threshold": KEEP, "verifiers": {"small": str(path)}},
        }).model_dump(mode="json"))

    push(tmp_path / "small.json")
    h = client.post(CHAT, json=chat()).headers
    assert (h["x-gateway-cascade"], h["x-gateway-tier"]) == ("small>large", "large")
    assert h["x-gateway-cascade-verdict"].startswith("verifier=")
    assert metric(gateway, "gateway_cascade_total", first_tier="small", outcome="escalated", signal="verifier") == 1
    push(tmp_path / "missing.json")
    kept = client.post(CHAT, json=chat())
    assert kept.status_code == 200 and kept.headers["x-gateway-cascade-verdict"] == "mean_logprob=-0.5>=-0.6"
