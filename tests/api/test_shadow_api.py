"""Shadowing and feedback in-process: mirroring never touches the primary answer, pairs
and answers are stored, drops and failures are counted, feedback finds its answer."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from gateway.assembly import Features, ShadowParts, Tiers, build_gateway
from gateway.catalog import TierSpec
from gateway.settings import LimitSettings
from shadow.journal import Journal
from tests.support.fake_engine import FakeEngine

CHAT = "/v1/chat/completions"


class WordOverlap:
    """A stand-in agreement: share of words in common (the real one embeds; unit-level here)."""

    def score(self, a: str, b: str) -> float:
        x, y = set(a.split()), set(b.split())
        return len(x & y) / max(1, len(x | y))


@pytest.fixture
def engines():
    return {"small": FakeEngine("tiny", max_model_len=64), "large": FakeEngine("big", max_model_len=128)}


@pytest.fixture
def store(tmp_path):
    return Journal(tmp_path / "shadow.sqlite")


@pytest.fixture
def gateway(engines, store):
    tiers = {"small": TierSpec(served_name="tiny", max_model_len=64), "large": TierSpec(served_name="big", max_model_len=128)}
    return build_gateway(Tiers(engines, tiers), LimitSettings(), features=Features(shadow=ShadowParts(store, WordOverlap())))


@pytest.fixture
def client(gateway):
    with TestClient(gateway.app, raise_server_exceptions=False) as client:
        yield client


def chat(client, model="small", stream=False, **extra):
    body = {"model": model, "messages": [{"role": "user", "content": "where is my refund"}],
            "max_tokens": 4, "stream": stream, **extra}
    return client.post(CHAT, json=body)


def rid(response) -> str:
    """The gateway's id of an answered request: `x-request-id` when the client sent none."""
    return response.headers["x-request-id"]


def mirror(gateway, *rules, **options):
    assert gateway.reconfigure({"shadow": {"rules": list(rules), **options}})


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def metric(client, line_start):
    text = client.get("/metrics").text
    return sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith(line_start))


def test_small_traffic_mirrored_to_large_is_stored_with_agreement(client, gateway, engines, store):
    mirror(gateway, {"tier": "small", "target": "large", "sample_rate": 1.0})
    r = chat(client)
    assert r.status_code == 200 and r.headers["x-gateway-tier"] == "small"
    wait_for(lambda: len(store.pairs()) == 1)
    pair = store.pairs()[0]
    assert (pair.request_id, pair.primary_target, pair.shadow_target) == (rid(r), "small", "large")
    assert pair.primary_text == r.json()["choices"][0]["message"]["content"]
    assert pair.agreement == WordOverlap().score(pair.primary_text, pair.shadow_text)
    assert engines["large"].seen[0].request_id == f"{rid(r)}-shadow-0"
    # The pair is stored before its counters move (both on the shadow's task): wait for them.
    wait_for(lambda: metric(client, "gateway_shadow_agreement_count") == 1)
    assert metric(client, 'gateway_shadow_requests_total{outcome="stored",target="large"}') == 1


def test_no_rule_no_shadow_and_sample_rate_zero(client, gateway, engines, store):
    mirror(gateway, {"tier": "small", "target": "large", "sample_rate": 0.0})
    answered = [chat(client) for _ in range(5)]
    assert all(r.status_code == 200 for r in answered)
    wait_for(lambda: store.request(rid(answered[-1])) is not None)  # the journal still records answers
    assert engines["large"].seen == [] and store.pairs() == []


def test_streamed_answers_are_mirrored_and_journaled_whole(client, gateway, store):
    mirror(gateway, {"target": "large", "sample_rate": 1.0})
    r = chat(client, stream=True)
    assert r.status_code == 200 and "[DONE]" in r.text
    # The journal and the mirror are separate queues: wait for both.
    wait_for(lambda: len(store.pairs()) == 1 and store.request(rid(r)) is not None)
    assert store.request(rid(r)).draft == store.pairs()[0].primary_text != ""


def test_a_failing_shadow_target_never_fails_the_primary(client, gateway, engines, store):
    mirror(gateway, {"tier": "small", "target": "large", "sample_rate": 1.0})
    engines["large"].unavailable_for = -1
    for _ in range(3):
        assert chat(client).status_code == 200
    wait_for(lambda: metric(client, 'gateway_shadow_requests_total{outcome="failed"') == 3)
    assert store.pairs() == []


def test_a_full_queue_drops_and_counts_without_waiting(client, gateway, engines, store):
    engines["large"].token_delay_s = 0.2  # each shadow call takes ~0.8 s
    mirror(gateway, {"tier": "small", "target": "large", "sample_rate": 1.0}, queue_size=1, concurrency=1)
    started = time.monotonic()
    for _ in range(6):
        assert chat(client).status_code == 200
    assert time.monotonic() - started < 2.0  # the primaries did not wait for ~5 s of shadow work
    assert metric(client, 'gateway_shadow_dropped_total{queue="mirror"}') >= 3


def test_feedback_is_stored_with_the_route_and_match(client, gateway, store):
    r = chat(client)
    draft = r.json()["choices"][0]["message"]["content"]
    wait_for(lambda: store.request(rid(r)) is not None)
    ok = client.post("/v1/feedback", json={"request_id": r.json()["id"], "rating": -1,
                                          "sent_text": draft, "comment": "too short"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["answered_by"] == "small" and ok.json()["match"] == 1.0
    saved = store.feedback(rid(r))
    assert [(f.rating, f.comment, f.match) for f in saved] == [(-1, "too short", 1.0)]
    assert metric(client, 'gateway_feedback_total{adapter="",category="",rating="-1",tier="small"}') == 1


@pytest.mark.parametrize("body, status, param", [
    ({"request_id": "nope", "rating": 1}, 404, "request_id"),
    ({"request_id": "fb-x", "rating": 0}, 400, "rating"),
    ({"request_id": "fb-x"}, 400, "rating"),
    ({"request_id": "fb-x", "rating": 1, "extra": True}, 400, "extra"),
])
def test_bad_feedback_is_an_openai_error(client, body, status, param):
    r = client.post("/v1/feedback", json=body)
    assert r.status_code == status
    assert set(r.json()["error"]) == {"message", "type", "param", "code"} and r.json()["error"]["param"] == param


def test_journal_off_keeps_nothing_for_feedback(client, gateway, store):
    mirror(gateway, journal=False)
    r = chat(client)
    assert client.post("/v1/feedback", json={"request_id": rid(r), "rating": 1}).status_code == 404


def test_a_broken_shadow_hand_over_never_fails_the_primary(client, gateway, monkeypatch):
    def boom(*_args, **_kwargs):
        raise RuntimeError("store on fire")

    monkeypatch.setattr(gateway.shadow, "completed", boom)
    assert chat(client).status_code == 200
    assert metric(client, 'gateway_shadow_dropped_total{queue="error"}') == 1
