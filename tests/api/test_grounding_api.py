"""Grounded answers through the HTTP edge, on fake engines and a scripted reranker:
the async upgrade's four paths (agree, upgrade, late, deadline), sync and off modes,
retrieval failure, opt-in/out, and OpenAI-shaped errors."""

import json

from starlette.testclient import TestClient

from gateway.assembly import Edge, Features, Tiers, build_gateway
from gateway.catalog import TierSpec
from retrieval.grounding import Grounder
from gateway.live_config import LiveConfig
from gateway.metrics import GatewayMetrics
from gateway.settings import LimitSettings
from retrieval.config import GroundingConfig
from tests.support.fake_engine import FakeEngine
from tests.support.retrieval import ScriptedReranker, first_stage

QUESTION = "how can I get a refund for my purchase"
TIERS = {"small": TierSpec(served_name="tiny", max_model_len=4096), "large": TierSpec(served_name="big", max_model_len=4096)}


def prefer(doc_id: str):
    return lambda passage: 1.0 if passage.startswith(TITLES[doc_id]) else 0.0


TITLES = {"refund_policy": "Refund policy", "track_refund": "Track a refund", "cancel_order": "Cancel an order"}


class Rig:
    def __init__(self, tmp_path, reranker: ScriptedReranker, token_delay_s: float = 0.01, **config) -> None:
        self.engines = {
            "small": FakeEngine("tiny", max_model_len=4096, token_delay_s=token_delay_s),
            "large": FakeEngine("big", max_model_len=4096, token_delay_s=token_delay_s),
        }
        self.metrics = GatewayMetrics()
        self.stage = first_stage(tmp_path)
        self.reranker = reranker
        grounder = Grounder(self.stage, reranker, self.metrics.grounding)
        config.setdefault("top_k", 1)  # one chunk in the prompt: another top-1 is an upgrade
        live = LiveConfig(grounding=GroundingConfig(**config))
        self.gateway = build_gateway(Tiers(self.engines, TIERS), LimitSettings(), config=live, edge=Edge(metrics=self.metrics), features=Features(grounder=grounder))

    def first_top(self) -> str:
        return self.stage.hybrid(QUESTION, 20).hits[0].chunk.id

    def outcome(self, name: str) -> float:
        return self.metrics.registry.get_sample_value("gateway_rerank_outcomes_total", {"outcome": name}) or 0.0


def ask(client, stream=False, grounding=True, max_tokens=20, **extra):
    body = {"model": "small", "messages": [{"role": "user", "content": QUESTION}], "max_tokens": max_tokens,
            "stream": stream, **extra}
    if grounding is not None:
        body["grounding"] = grounding
    return client.post("/v1/chat/completions", json=body)


def served_system_prompt(engine: FakeEngine, index: int = -1) -> str:
    messages = engine.seen[index].messages
    assert messages[0].role == "system"
    return messages[0].content


def other_than(rig: Rig, chunk_id: str) -> str:
    return next(d for d in TITLES if not chunk_id.startswith(d))


def test_reranker_agreeing_keeps_the_first_stage_answer(tmp_path):
    rig = Rig(tmp_path, ScriptedReranker(lambda p: 0.0))
    top = rig.first_top()
    rig.reranker.score = prefer(top.split("#")[0])
    with TestClient(rig.gateway.app) as client:
        response = ask(client)
    assert response.status_code == 200
    assert response.headers["x-gateway-context"] == "first-stage"
    assert response.headers["x-gateway-context-chunks"].split(",")[0] == top
    assert f"[{top}]" in served_system_prompt(rig.engines["small"])
    assert len(rig.engines["small"].seen) == 1 and rig.outcome("in_context") == 1


def test_disagreeing_reranker_restarts_generation_with_its_context(tmp_path):
    rig = Rig(tmp_path, ScriptedReranker(lambda p: 0.0, delay_s=0.05), token_delay_s=0.05)
    winner = other_than(rig, rig.first_top())
    rig.reranker.score = prefer(winner)
    with TestClient(rig.gateway.app) as client:
        response = ask(client, max_tokens=30)
    assert response.status_code == 200
    assert response.headers["x-gateway-context"] == "reranked"
    assert response.headers["x-gateway-context-chunks"].startswith(f"{winner}#0")
    small = rig.engines["small"]
    first, second = small.seen
    assert first.request_id in small.aborted  # the first attempt was stopped, not finished
    assert second.request_id == f"{first.request_id}-reranked"
    assert served_system_prompt(small).split("\n\n")[1].startswith(f"[{winner}#0]")
    # The answer returned is the reranked attempt's (the fake engine echoes its prompt,
    # whose instruction cites the top chunk as its example).
    assert f"[{winner}#0]" in response.json()["choices"][0]["message"]["content"]
    assert rig.outcome("upgraded") == 1
    assert rig.metrics.registry.get_sample_value(
        "gateway_grounded_requests_total", {"context": "reranked", "category": ""}) == 1


def test_answer_final_before_the_reranker_is_returned_as_is(tmp_path):
    rig = Rig(tmp_path, ScriptedReranker(lambda p: 0.0, delay_s=2.0), token_delay_s=0.0)
    rig.reranker.score = prefer(other_than(rig, rig.first_top()))
    with TestClient(rig.gateway.app) as client:
        response = ask(client, max_tokens=5)
    assert response.headers["x-gateway-context"] == "first-stage"
    assert rig.outcome("late") == 1 and rig.reranker.cancelled == 1  # not left running
    assert rig.engines["small"].aborted == []


def test_stream_holds_its_first_token_for_the_reranker_and_upgrades(tmp_path):
    rig = Rig(tmp_path, ScriptedReranker(lambda p: 0.0, delay_s=0.2), token_delay_s=0.0, stream_deadline_s=2.0)
    winner = other_than(rig, rig.first_top())
    rig.reranker.score = prefer(winner)
    with TestClient(rig.gateway.app) as client:
        response = ask(client, stream=True, max_tokens=30)
    assert response.status_code == 200
    assert response.headers["x-gateway-context"] == "reranked"
    text = "".join(_stream_text(response.text))
    small = rig.engines["small"]
    assert small.seen[0].request_id in small.aborted
    assert f"[{winner}#0]" in text and text.count("Answer the customer") == 1  # only the reranked stream was sent
    assert rig.outcome("upgraded") == 1


def test_stream_past_the_deadline_serves_the_first_stage(tmp_path):
    rig = Rig(tmp_path, ScriptedReranker(lambda p: 0.0, delay_s=3.0), token_delay_s=0.0, stream_deadline_s=0.1)
    rig.reranker.score = prefer(other_than(rig, rig.first_top()))
    with TestClient(rig.gateway.app) as client:
        response = ask(client, stream=True, max_tokens=4)
    assert response.headers["x-gateway-context"] == "first-stage"
    assert len(list(_stream_text(response.text))) == 4
    assert rig.outcome("deadline_miss") == 1 and rig.reranker.cancelled == 1


def test_sync_mode_reranks_before_generating(tmp_path):
    rig = Rig(tmp_path, ScriptedReranker(lambda p: 0.0, delay_s=0.05), rerank="sync")
    winner = other_than(rig, rig.first_top())
    rig.reranker.score = prefer(winner)
    with TestClient(rig.gateway.app) as client:
        response = ask(client)
    assert response.headers["x-gateway-context"] == "reranked"
    assert len(rig.engines["small"].seen) == 1 and rig.engines["small"].aborted == []


def test_failing_reranker_leaves_the_first_stage_answer(tmp_path):
    rig = Rig(tmp_path, ScriptedReranker(lambda p: 0.0, fail=True), token_delay_s=0.02)
    with TestClient(rig.gateway.app) as client:
        plain, streamed = ask(client), ask(client, stream=True, max_tokens=3)
    assert plain.status_code == streamed.status_code == 200
    assert plain.headers["x-gateway-context"] == streamed.headers["x-gateway-context"] == "first-stage"
    assert rig.outcome("failed") == 2


def test_irrelevant_question_is_answered_without_context(tmp_path):
    rig = Rig(tmp_path, ScriptedReranker(lambda p: 0.0), min_relevance=0.5)
    with TestClient(rig.gateway.app) as client:
        response = client.post("/v1/chat/completions", json={
            "model": "small", "messages": [{"role": "user", "content": "zebra quantum tulip"}],
            "max_tokens": 3, "grounding": True})
    assert response.status_code == 200 and response.headers["x-gateway-context"] == "none"
    assert rig.engines["small"].seen[0].messages[0].role == "user"
    assert rig.metrics.registry.get_sample_value(
        "gateway_retrieval_failures_total", {"reason": "low_relevance", "category": ""}) == 1


def test_grounding_follows_the_domain_default_and_the_request_flag(tmp_path):
    rig = Rig(tmp_path, ScriptedReranker(lambda p: 0.0), domains=["refund"])
    with TestClient(rig.gateway.app) as client:
        by_category = ask(client, grounding=None, metadata={"category": "REFUND"})
        other_domain = ask(client, grounding=None, metadata={"category": "shipping"})
        opted_out = ask(client, grounding=False, metadata={"category": "refund"})
    assert by_category.headers["x-gateway-context"] == "first-stage"
    assert "x-gateway-context" not in other_domain.headers and "x-gateway-context" not in opted_out.headers


def test_client_system_message_keeps_its_place_with_the_context_appended(tmp_path):
    rig = Rig(tmp_path, ScriptedReranker(lambda p: 0.0))
    with TestClient(rig.gateway.app) as client:
        client.post("/v1/chat/completions", json={"model": "small", "grounding": True, "max_tokens": 3, "messages": [
            {"role": "system", "content": "You are Acme's assistant."}, {"role": "user", "content": QUESTION}]})
    system = served_system_prompt(rig.engines["small"])
    assert system.startswith("You are Acme's assistant.") and "knowledge base excerpts" in system


def test_text_completions_get_the_context_as_a_preamble(tmp_path):
    rig = Rig(tmp_path, ScriptedReranker(lambda p: 0.0))
    with TestClient(rig.gateway.app) as client:
        response = client.post("/v1/completions", json={"model": "small", "prompt": QUESTION, "max_tokens": 3, "grounding": True})
    assert response.headers["x-gateway-context"] == "first-stage"
    assert rig.engines["small"].seen[0].prompt.endswith(QUESTION)


def test_grounding_is_live_configurable(tmp_path):
    rig = Rig(tmp_path, ScriptedReranker(lambda p: 0.0, delay_s=0.05))
    rig.reranker.score = prefer(other_than(rig, rig.first_top()))
    assert rig.gateway.reconfigure({"grounding": {"rerank": "off"}})
    with TestClient(rig.gateway.app) as client:
        response = ask(client)
    assert response.headers["x-gateway-context"] == "first-stage" and rig.reranker.calls == 0
    assert not rig.gateway.reconfigure({"grounding": {"top_k": 30}})
    assert "grounding.top_k" in rig.gateway.state.rejected.message


def test_grounding_without_a_knowledge_base_is_a_clear_error(client):
    response = client.post("/v1/chat/completions", json={
        "model": "small", "messages": [{"role": "user", "content": "hi"}], "grounding": True})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "grounding" and error["code"] == "grounding_unavailable"


def test_grounding_flag_must_be_a_boolean(client):
    response = client.post("/v1/chat/completions", json={
        "model": "small", "messages": [{"role": "user", "content": "hi"}], "grounding": "maybe"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "grounding"


def _stream_text(body: str):
    for line in body.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            choices = json.loads(line[6:])["choices"]
            if choices and choices[0]["delta"].get("content"):
                yield choices[0]["delta"]["content"]


def test_reranked_top1_already_in_the_prompt_does_not_restart(tmp_path):
    rig = Rig(tmp_path, ScriptedReranker(lambda p: 0.0, delay_s=0.05), token_delay_s=0.05, top_k=3)
    second = rig.stage.hybrid(QUESTION, 20).hits[1].chunk
    rig.reranker.score = lambda passage: 1.0 if passage == second.passage() else 0.0
    with TestClient(rig.gateway.app) as client:
        response = ask(client)
    assert response.headers["x-gateway-context"] == "first-stage"
    assert second.id in response.headers["x-gateway-context-chunks"].split(",")
    assert len(rig.engines["small"].seen) == 1 and rig.outcome("in_context") == 1
