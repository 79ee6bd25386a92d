"""The support controls in-process (fake engines, a fake gate): gated and `off` requests
get the hand-off text as a normal OpenAI answer (JSON and SSE) and no tier is called;
`gate: false` skips the gate; every answer says its rollout mode; drafts are journaled;
the admin API promotes; feedback on drafts shows in the rollout status and clears the gate."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from adapters.registry import AdapterRegistry
from gate.verdict import GateThresholds, GateVerdict
from adapters.directory import AdapterDirectory
from gateway.assembly import AdapterParts, Edge, Features, ShadowParts, Tiers, build_gateway
from gateway.catalog import TierSpec
from gateway.live_config import LiveConfig
from support.rollout_state import RolloutBook
from gateway.settings import AdminSettings, LimitSettings
from support.wiring import SupportParts
from shadow.journal import Journal
from tests.support.adapters import BASE, make_adapter
from tests.support.fake_engine import FakeEngine

CHAT, COMPLETIONS = "/v1/chat/completions", "/v1/completions"
ADMIN = "admin-secret"
AS_ADMIN = {"authorization": f"Bearer {ADMIN}"}
HANDOFF = "A person from our team will answer you."
TIERS = {"small": TierSpec(served_name="tiny", max_model_len=128),
         "large": TierSpec(served_name="big", max_model_len=128)}


class KeywordGate:
    """Stands in for gate.model.AnswerabilityGate: greetings are chitchat, "fixed" lacks context."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None, float]] = []
        self.broken = False

    def classify(self, text: str, category: str | None, thresholds: GateThresholds) -> GateVerdict:
        if self.broken:
            raise RuntimeError("model file gone")
        self.seen.append((text, category, thresholds.for_category(category)))
        label = "chitchat" if "hello" in text else "no_context" if "fixed" in text else "answerable"
        return GateVerdict(label=label, scores={label: 0.9}, threshold=thresholds.for_category(category))


class Exact:
    """Agreement of a draft with the sent text: 1 when identical, else 0."""

    def score(self, a: str, b: str) -> float:
        return float(a == b)


class Embedder:
    dim = 2

    def embed(self, texts):
        return np.asarray([[1.0, 0.0] if "refund" in t else [0.0, 1.0] for t in texts], dtype=np.float32)


@pytest.fixture
def engines():
    return {"small": FakeEngine("tiny", max_model_len=128), "large": FakeEngine("big", max_model_len=128)}


@pytest.fixture
def store(tmp_path):
    return Journal(tmp_path / "shadow.sqlite")


@pytest.fixture
def gate():
    return KeywordGate()


@pytest.fixture
def state_path(tmp_path):
    return tmp_path / "rollout" / "state.json"


@pytest.fixture
def make(engines, store, gate, state_path, tmp_path):
    def make(support: dict | None = None, with_gate: bool = True, journal: bool = True, adapters=None):
        config = LiveConfig.parse({
            "routing": {"policy": "baseline"}, "shadow": {"journal": journal},
            "support": {"handoff_text": HANDOFF, **(support or {})},
        })
        return build_gateway(Tiers(engines, TIERS), LimitSettings(), config=config, edge=Edge(admin=AdminSettings(api_key=SecretStr(ADMIN))), features=Features(shadow=ShadowParts(store, Exact()), adapters=adapters, support=SupportParts(state_path, poll_s=0.05, review_s=0.05), gate=gate if with_gate else None))
    return make


@pytest.fixture
def serve():
    clients = []

    def serve(gateway):
        client = TestClient(gateway.app, raise_server_exceptions=False)
        clients.append(client.__enter__())
        return client
    yield serve
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make, serve):
    return serve(make({"gate": {"enabled": True}}))


def calls(engines) -> int:
    return engines["small"].calls + engines["large"].calls


def chat(client, text="where is my refund", category=None, **extra):
    body = {"model": "auto", "messages": [{"role": "user", "content": text}], "max_tokens": 4, **extra}
    if category:
        body["metadata"] = {"category": category}
    return client.post(CHAT, json=body)


def rid(response) -> str:
    """The gateway's id of an answered request: `x-request-id` when the client sent none."""
    return response.headers["x-request-id"]


def events(response) -> list[dict]:
    lines = [line.removeprefix("data: ") for line in response.text.split("\n\n") if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def sample(gateway, name: str, **labels: str) -> float:
    for family in gateway.metrics.registry.collect():
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


# ---- the answerability gate -----------------------------------------------------------


def test_gated_chat_gets_the_handoff_and_no_tier_is_called(client, engines):
    response = chat(client, "hello, how are you?")
    assert response.status_code == 200
    assert response.headers["x-gateway-gate"] == "chitchat"
    assert "x-gateway-tier" not in response.headers
    body = response.json()
    assert body["object"] == "chat.completion" and body["id"] == f"chatcmpl-{rid(response)}"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": HANDOFF}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert calls(engines) == 0


def test_gated_completion_says_no_context(client, engines):
    response = client.post(COMPLETIONS, json={"model": "small", "prompt": "when will this be fixed?"})
    assert response.status_code == 200 and response.headers["x-gateway-gate"] == "no_context"
    body = response.json()
    assert body["object"] == "text_completion"
    assert body["choices"][0]["text"] == HANDOFF and body["choices"][0]["finish_reason"] == "stop"
    assert calls(engines) == 0


def test_gated_chat_stream_is_one_chunk_then_done(client, engines):
    response = chat(client, "hello there", stream=True, stream_options={"include_usage": True})
    assert response.status_code == 200 and response.headers["x-gateway-gate"] == "chitchat"
    assert response.headers["content-type"].startswith("text/event-stream")
    first, usage = events(response)
    assert first["object"] == "chat.completion.chunk"
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": HANDOFF}
    assert first["choices"][0]["finish_reason"] == "stop"
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] == 0
    assert calls(engines) == 0


def test_gated_completion_stream(client, engines):
    response = client.post(COMPLETIONS, json={"model": "auto", "prompt": "hello!", "stream": True})
    (only,) = events(response)
    assert only["object"] == "text_completion" and "usage" not in only
    assert only["choices"][0]["text"] == HANDOFF and only["choices"][0]["finish_reason"] == "stop"
    assert calls(engines) == 0


def test_a_real_question_passes_the_gate_and_is_answered(client, engines, gate):
    response = chat(client, "where is my refund", category="Billing")
    assert response.status_code == 200 and "x-gateway-gate" not in response.headers
    assert response.headers["x-gateway-mode"] == "auto"
    assert calls(engines) == 1
    assert gate.seen == [("where is my refund", "billing", 0.5)]


def test_gate_false_skips_the_gate(client, engines, gate):
    response = chat(client, "hello there", gate=False)
    assert response.status_code == 200 and "x-gateway-gate" not in response.headers
    assert response.headers["x-gateway-tier"] in ("small", "large")
    assert calls(engines) == 1 and gate.seen == []


def test_gate_true_asks_for_it_when_the_config_is_off(make, serve, engines, gate):
    client = serve(make())  # gate.enabled false: existing behaviour
    assert chat(client, "hello there").headers.get("x-gateway-gate") is None
    assert chat(client, "hello there", gate=True).headers["x-gateway-gate"] == "chitchat"
    assert len(gate.seen) == 1


def test_gate_true_without_a_classifier_is_a_400(make, serve, engines):
    client = serve(make(with_gate=False))
    response = chat(client, "hello there", gate=True)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "gate_unavailable"
    assert calls(engines) == 0


def test_per_category_threshold_reaches_the_gate(make, serve, gate):
    client = serve(make({"gate": {"enabled": True, "thresholds": {"default": 0.6, "categories": {"billing": 0.95}}}}))
    chat(client, "where is my refund", category="billing")
    chat(client, "where is my refund")
    assert [threshold for _, _, threshold in gate.seen] == [0.95, 0.6]


def test_a_failing_gate_answers_the_request(client, engines, gate):
    gate.broken = True
    response = chat(client, "hello there")
    assert response.status_code == 200 and "x-gateway-gate" not in response.headers
    assert calls(engines) == 1


def test_unknown_model_is_still_a_404(client, engines):
    response = client.post(CHAT, json={"model": "gpt-7", "messages": [{"role": "user", "content": "hello"}]})
    assert response.status_code == 404 and calls(engines) == 0


def test_gate_decisions_are_counted_per_category_and_label(make, serve):
    gateway = make({"gate": {"enabled": True}, "rollout": {"categories": {"billing": "auto"}}})
    client = serve(gateway)
    chat(client, "hello", category="billing")
    chat(client, "hello", category="billing")
    chat(client, "where is my refund", category="random-client-thing")
    assert sample(gateway, "gateway_gate_decisions_total", category="billing", label="chitchat") == 2
    assert sample(gateway, "gateway_gate_decisions_total", category="other", label="answerable") == 1


# ---- rollout modes ------------------------------------------------------------------------


def test_off_category_gets_the_handoff_without_routing(make, serve, engines):
    client = serve(make({"rollout": {"categories": {"billing": "off"}}}))
    response = chat(client, "where is my refund", category="billing")
    assert response.headers["x-gateway-mode"] == "off"
    assert response.json()["choices"][0]["message"]["content"] == HANDOFF
    streamed = chat(client, "where is my refund", category="Billing", stream=True)
    assert streamed.headers["x-gateway-mode"] == "off"
    assert events(streamed)[0]["choices"][0]["delta"]["content"] == HANDOFF
    assert calls(engines) == 0


def test_draft_and_auto_are_answered_and_say_so(make, serve, engines):
    client = serve(make({"rollout": {"default_mode": "draft", "categories": {"orders": "auto"}}}))
    draft = chat(client, category="billing")
    auto = chat(client, category="orders")
    plain = chat(client)
    assert [r.headers["x-gateway-mode"] for r in (draft, auto, plain)] == ["draft", "auto", "draft"]
    assert calls(engines) == 3
    streamed = chat(client, category="billing", stream=True)
    assert streamed.headers["x-gateway-mode"] == "draft" and events(streamed)[0]["choices"][0]["delta"]["content"]


def test_drafts_are_journaled_even_with_the_journal_off(make, serve, store):
    client = serve(make({"rollout": {"categories": {"billing": "draft"}}}, journal=False))
    draft = rid(chat(client, category="billing"))
    auto = rid(chat(client, category="orders"))
    wait_for(lambda: store.request(draft) is not None)
    record = store.request(draft)
    assert record.tags["mode"] == "draft" and record.tags["rollout_category"] == "billing"
    assert store.request(auto) is None  # auto answers follow the journal setting


def test_without_a_client_category_the_adapter_domain_decides(make, serve, engines, tmp_path):
    registry = AdapterRegistry(tmp_path / "adapters", base=BASE)
    registry.register(make_adapter(tmp_path / "src", "refund", "refund-v1-2026-11-01", centroid=[1.0, 0.0]))
    registry.activate("refund", "refund-v1-2026-11-01")
    directory = AdapterDirectory(registry, Embedder(), "minilm", 0.9)
    client = serve(make({"rollout": {"categories": {"refund": "off"}}}, adapters=AdapterParts(directory)))
    pinned = chat(client, "where is my refund", model="small:refund")
    assert pinned.headers["x-gateway-mode"] == "off"
    assert calls(engines) == 0  # planned (domain known), never generated
    assert chat(client, "where is my parcel").headers["x-gateway-mode"] == "auto"


# ---- changes: admin API, feedback, the gate ---------------------------------------------------


def promote(client, category, **extra):
    return client.post("/admin/rollout/promote", json={"category": category, **extra}, headers=AS_ADMIN)


def test_promote_via_admin_api_needs_the_gate_or_force(make, serve, state_path):
    client = serve(make({"rollout": {"categories": {"billing": "off"}}}))
    first = promote(client, "billing")
    assert first.status_code == 200 and first.json()["event"]["to_mode"] == "draft"
    assert chat(client, category="billing").headers["x-gateway-mode"] == "draft"  # this replica at once
    refused = promote(client, "billing")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "gate_not_cleared"
    assert "0 rated drafts < 50" in refused.json()["error"]["message"]
    forced = promote(client, "billing", force=True, note="launch day")
    assert forced.json()["event"]["evidence"]["forced"] is True
    assert chat(client, category="billing").headers["x-gateway-mode"] == "auto"
    listed = client.get("/admin/rollout/events", headers=AS_ADMIN).json()["events"]
    assert [(e["from_mode"], e["to_mode"], e["by"]) for e in listed] == [
        ("off", "draft", "admin-key"), ("draft", "auto", "admin-key")]
    assert RolloutBook(state_path).state().categories["billing"].mode == "auto"


def test_admin_rollout_needs_the_admin_key(client):
    assert client.get("/admin/rollout").status_code == 401
    assert promote(client, "").status_code == 400


def test_demote_and_a_change_made_elsewhere_reaches_this_replica(make, serve, state_path):
    gateway = make()
    client = serve(gateway)
    demoted = client.post("/admin/rollout/demote", json={"category": "billing"}, headers=AS_ADMIN)
    assert demoted.json()["status"]["mode"] == "draft"
    assert sample(gateway, "gateway_rollout_changes_total", category="billing", to="draft", reason="manual") == 1
    RolloutBook(state_path).change("billing", "off", initial="draft", reason="manual", by="cli:ops")
    wait_for(lambda: chat(client, category="billing").headers["x-gateway-mode"] == "off")
    wait_for(lambda: sample(gateway, "gateway_rollout_mode", category="billing") == 0)


def feedback(client, request_id, rating, sent_text=None):
    response = client.post("/v1/feedback", json={"request_id": request_id, "rating": rating, "sent_text": sent_text})
    assert response.status_code == 200, response.text
    return response


def test_feedback_on_drafts_shows_in_status_and_clears_the_gate(make, serve, store):
    gate_rules = {"min_samples": 3, "min_match": 0.6, "max_negative": 0.5, "match_threshold": 0.9}
    client = serve(make({"rollout": {"categories": {"billing": "draft"}, "promotion_gate": gate_rules}}))
    answers = {}
    for i in range(4):
        response = chat(client, f"where is my refund number {i}", category="billing")
        answers[rid(response)] = response.json()["choices"][0]["message"]["content"]
    wait_for(lambda: all(store.request(r) for r in answers))
    (d0, a0), (d1, a1), (d2, _), _ = answers.items()
    feedback(client, d0, 1, a0)  # sent unchanged
    feedback(client, d1, 1, a1)
    feedback(client, d2, -1, "something else entirely")  # rewritten
    (billing,) = client.get("/admin/rollout", headers=AS_ADMIN).json()["categories"]
    assert billing["mode"] == "draft" and billing["drafts"]["n"] == 3
    assert billing["drafts"]["match_rate"] == pytest.approx(2 / 3)
    assert billing["drafts"]["negative_share"] == pytest.approx(1 / 3)
    assert billing["promotion"]["cleared"] is True
    promoted = promote(client, "billing")
    assert promoted.status_code == 200 and promoted.json()["event"]["evidence"]["forced"] is False
    assert promoted.json()["event"]["evidence"]["drafts"]["n"] == 3


def test_auto_promotion_and_demotion(make, serve, store, state_path):
    rules = {"categories": {"billing": "draft"}, "auto_promote": True, "auto_demote": True,
             "promotion_gate": {"min_samples": 2, "min_match": 0.5, "max_negative": 0.5},
             "demote_min_samples": 2, "guardrails": {"billing": 0.5}}
    gateway = make({"rollout": rules})
    client = serve(gateway)
    for _ in range(2):
        response = chat(client, category="billing")
        wait_for(lambda: store.request(rid(response)) is not None)
        feedback(client, rid(response), 1, response.json()["choices"][0]["message"]["content"])
    wait_for(lambda: chat(client, category="billing").headers["x-gateway-mode"] == "auto")
    for _ in range(2):
        response = chat(client, category="billing")
        assert response.headers["x-gateway-mode"] == "auto"
        wait_for(lambda: store.request(rid(response)) is not None)
        feedback(client, rid(response), -1)
    wait_for(lambda: chat(client, category="billing").headers["x-gateway-mode"] == "draft")
    reasons = [(e.reason, e.to_mode) for e in RolloutBook(state_path).events("billing")]
    assert reasons == [("auto_promote", "auto"), ("auto_demote", "draft")]
    # Back in draft, the old drafts do not count again: no flapping back to auto.
    time.sleep(0.3)
    assert chat(client, category="billing").headers["x-gateway-mode"] == "draft"
    assert sample(gateway, "gateway_rollout_changes_total", category="billing", to="auto", reason="auto_promote") == 1
