"""Agent fields in-process (fake engines): every field the gateway accepts reaches the
engine or is refused with a 400 naming it and the tier; `auto` routes a request only to a
tier that can serve it; /v1/models says what each can."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from gateway.assembly import Tiers, build_gateway
from gateway.catalog import TierSpec
from gateway.settings import LimitSettings
from tests.support.fake_engine import FakeEngine

CHAT = "/v1/chat/completions"
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
SCHEMA = {"type": "json_schema", "json_schema": {"name": "t", "schema": {"type": "object"}, "strict": True}}
# Each field, and what it must do on a tier that serves it.
FIELDS = {
    "tools": {"tools": [TOOL], "tool_choice": "required"},
    "response_format": {"response_format": SCHEMA},
    "n": {"n": 2},
    "logprobs": {"logprobs": True, "top_logprobs": 1},
}


@pytest.fixture
def engines():
    return {"small": FakeEngine("tiny", max_model_len=256), "large": FakeEngine("big", max_model_len=256)}


@pytest.fixture
def client(engines):
    tiers = {
        "small": TierSpec(served_name="tiny", max_model_len=256),  # everything
        "large": TierSpec(served_name="big", max_model_len=256, capabilities=frozenset({"n"})),
    }
    with TestClient(build_gateway(Tiers(engines, tiers), LimitSettings()).app) as client:
        yield client


def ask(client, model="small", **fields):
    body = {"model": model, "messages": [{"role": "user", "content": "hi there"}], "max_tokens": 3, **fields}
    return client.post(CHAT, json=body)


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_every_accepted_field_reaches_the_engine(client, engines, field):
    r = ask(client, **FIELDS[field])
    assert r.status_code == 200, r.text
    agentic = engines["small"].seen[-1].agentic
    choices = r.json()["choices"]
    if field == "tools":
        assert agentic.tools[0].name == "lookup" and agentic.tool_choice == "required"
        assert choices[0]["message"]["tool_calls"][0]["function"]["name"] == "lookup"
        assert choices[0]["finish_reason"] == "tool_calls"
    elif field == "response_format":
        assert agentic.output.type == "json_schema" and agentic.output.json_schema == {"type": "object"}
        assert agentic.output.strict is True
    elif field == "n":
        assert agentic.n == 2 and [c["index"] for c in choices] == [0, 1]
    else:
        assert agentic.logprobs == 1
        assert choices[0]["logprobs"]["content"][0]["top_logprobs"]


@pytest.mark.parametrize("field", ["tools", "response_format", "logprobs"])
def test_a_tier_that_cannot_refuses_naming_the_field_and_the_tier(client, engines, field):
    r = ask(client, model="large", **FIELDS[field])
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == field and error["code"] == "unsupported_by_tier"
    assert "large" in error["message"] and field in error["message"]
    assert not engines["large"].seen  # refused before dispatch


@pytest.mark.parametrize("field", ["tools", "response_format", "logprobs"])
def test_auto_routes_only_to_a_tier_that_can(client, engines, field):
    r = ask(client, model="auto", **FIELDS[field])
    assert r.status_code == 200
    assert r.headers["x-gateway-tier"] == "small" and r.headers["x-gateway-route-reason"] == "capability"


def test_the_models_list_says_what_each_tier_can(client):
    cards = {card["id"]: card for card in client.get("/v1/models").json()["data"]}
    assert cards["small"]["capabilities"] == ["json_schema", "logprobs", "n", "tools"]
    assert cards["large"]["capabilities"] == ["n"]
    assert cards["auto"]["capabilities"] == ["json_schema", "logprobs", "n", "tools"]


def test_streamed_tool_calls_and_choices_carry_their_index(client):
    with client.stream("POST", CHAT, json={
        "model": "small", "messages": [{"role": "user", "content": "a b"}], "max_tokens": 2, "n": 2, "stream": True,
    }) as r:
        body = r.read().decode()
    assert '"index":1' in body and body.rstrip().endswith("data: [DONE]")
    r = ask(client, stream=True, tools=[TOOL], tool_choice={"type": "function", "function": {"name": "lookup"}})
    assert '"tool_calls":[{"index":0,"id":"call_fake0","type":"function","function":{"name":"lookup"' in r.text


def test_a_message_after_a_tool_result_is_served(client, engines):
    history = [
        {"role": "user", "content": "where is order 7"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"id": 7}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "shipped"},
    ]
    r = client.post(CHAT, json={"model": "small", "messages": history, "tools": [TOOL], "max_tokens": 3})
    assert r.status_code == 200, r.text
    turns = engines["small"].seen[-1].messages
    assert turns[1].tool_calls[0].name == "lookup" and turns[2].role == "tool" and turns[2].tool_call_id == "c1"


def test_shadow_compares_tool_calls_by_name_and_arguments(engines, tmp_path):
    import time

    from gateway.assembly import Features, ShadowParts
    from shadow.journal import Journal

    class NeverAgree:  # text agreement would say 0: the pair's score must come from the calls
        def score(self, a: str, b: str) -> float:
            return 0.0

    journal = Journal(tmp_path / "journal.sqlite")
    tiers = {"small": TierSpec(served_name="tiny", max_model_len=256), "large": TierSpec(served_name="big", max_model_len=256)}
    gateway = build_gateway(
        Tiers(engines, tiers), LimitSettings(), features=Features(shadow=ShadowParts(journal, NeverAgree())),
    )
    assert gateway.reconfigure({"shadow": {"rules": [{"tier": "small", "target": "large", "sample_rate": 1.0}]}})
    with TestClient(gateway.app) as client:
        r = ask(client, **FIELDS["tools"])
        assert r.status_code == 200
        rid = r.headers["x-request-id"]
        deadline = time.monotonic() + 5
        while not journal.pairs_of([rid]) and time.monotonic() < deadline:
            time.sleep(0.02)
    pair = journal.pairs_of([rid])[0]
    assert pair.agreement == 1.0 and pair.primary_text == "lookup({})" == pair.shadow_text


# ---- nothing accepted is ignored ---------------------------------------------------------
# Every field of the wire models, with a value and what must follow from it: a field added to
# a wire model without a case here fails `test_every_field_has_a_case`.

def _sampling(**expected):
    return lambda seen, r, tags: all(getattr(seen.sampling, k) == v for k, v in expected.items())


CHAT_CASES = {
    "model": ("large", lambda seen, r, tags: r.headers["x-gateway-tier"] == "large"),
    "messages": ([{"role": "user", "content": "alpha beta"}], lambda seen, r, tags: seen.messages[-1].content == "alpha beta"),
    "max_tokens": (2, _sampling(max_tokens=2)),
    "max_completion_tokens": (3, _sampling(max_tokens=3)),
    "temperature": (0.25, _sampling(temperature=0.25)),
    "top_p": (0.5, _sampling(top_p=0.5)),
    "stop": (["zz"], _sampling(stop=["zz"])),
    "seed": (7, _sampling(seed=7)),
    "n": (2, lambda seen, r, tags: len(r.json()["choices"]) == 2),
    "stream": (True, lambda seen, r, tags: r.text.rstrip().endswith("data: [DONE]")),
    "stream_options": ({"include_usage": True}, lambda seen, r, tags: '"usage":{' in r.text),
    "user": ("end-user-9", lambda seen, r, tags: tags.get("client.user") == "end-user-9"),
    "metadata": ({"category": "billing", "ticket": "T-1"},
                 lambda seen, r, tags: tags.get("client.metadata.ticket") == "T-1" and tags.get("category") == "billing"),
    "tools": ([TOOL], lambda seen, r, tags: seen.agentic.tools[0].name == "lookup"),
    "tool_choice": ("required", lambda seen, r, tags: r.json()["choices"][0]["finish_reason"] == "tool_calls"),
    "parallel_tool_calls": (False, lambda seen, r, tags: seen.agentic.parallel_tool_calls is False),
    "response_format": (SCHEMA, lambda seen, r, tags: seen.agentic.output.type == "json_schema"),
    "logprobs": (True, lambda seen, r, tags: r.json()["choices"][0]["logprobs"] is not None),
    "top_logprobs": (2, lambda seen, r, tags: seen.agentic.logprobs == 2),
    # Gateway extensions: this gateway serves no knowledge base and no gate, so they are refused.
    "grounding": (True, lambda seen, r, tags: r.status_code == 400 and r.json()["error"]["param"] == "grounding"),
    "gate": (True, lambda seen, r, tags: r.status_code == 400 and r.json()["error"]["param"] == "gate"),
    "cascade": (True, lambda seen, r, tags: "x-gateway-cascade" in r.headers),
}
# Fields a case needs alongside its own.
NEEDS = {"tool_choice": {"tools": [TOOL]}, "parallel_tool_calls": {"tools": [TOOL]}, "top_logprobs": {"logprobs": True},
         "stream_options": {"stream": True}, "cascade": {"model": "auto"}}
COMPLETION_CASES = {
    "model": ("large", lambda seen, r, tags: r.headers["x-gateway-tier"] == "large"),
    "prompt": ("gamma delta", lambda seen, r, tags: seen.prompt == "gamma delta"),
    "max_tokens": (2, _sampling(max_tokens=2)),
    "temperature": (0.25, _sampling(temperature=0.25)),
    "top_p": (0.5, _sampling(top_p=0.5)),
    "stop": ("zz", _sampling(stop=["zz"])),
    "seed": (7, _sampling(seed=7)),
    "n": (2, lambda seen, r, tags: len(r.json()["choices"]) == 2),
    "stream": (True, lambda seen, r, tags: r.text.rstrip().endswith("data: [DONE]")),
    "stream_options": ({"include_usage": True}, lambda seen, r, tags: '"usage":{' in r.text),
    "user": ("end-user-9", lambda seen, r, tags: tags.get("client.user") == "end-user-9"),
    "metadata": ({"ticket": "T-2"}, lambda seen, r, tags: tags.get("client.metadata.ticket") == "T-2"),
    "logprobs": (1, lambda seen, r, tags: r.json()["choices"][0]["logprobs"]["tokens"]),
    # Only the value that changes nothing is accepted; any other is refused (400).
    "echo": (True, lambda seen, r, tags: r.status_code == 400 and r.json()["error"]["param"] == "echo"),
    "best_of": (2, lambda seen, r, tags: r.status_code == 400 and r.json()["error"]["param"] == "best_of"),
    "suffix": ("x", lambda seen, r, tags: r.status_code == 400 and r.json()["error"]["param"] == "suffix"),
    "grounding": (True, lambda seen, r, tags: r.status_code == 400 and r.json()["error"]["param"] == "grounding"),
    "gate": (True, lambda seen, r, tags: r.status_code == 400 and r.json()["error"]["param"] == "gate"),
    "cascade": (True, lambda seen, r, tags: "x-gateway-cascade" in r.headers),
}


def test_every_field_has_a_case():
    from wire.chat import ChatCompletionRequest, CompletionRequest

    assert set(ChatCompletionRequest.model_fields) == set(CHAT_CASES)
    assert set(CompletionRequest.model_fields) == set(COMPLETION_CASES)


@pytest.fixture
def journaled(engines, tmp_path):
    from gateway.assembly import Features, ShadowParts
    from shadow.journal import Journal

    class Same:
        def score(self, a: str, b: str) -> float:
            return float(a == b)

    journal = Journal(tmp_path / "journal.sqlite")
    tiers = {"small": TierSpec(served_name="tiny", max_model_len=256), "large": TierSpec(served_name="big", max_model_len=256)}
    gateway = build_gateway(Tiers(engines, tiers), LimitSettings(), features=Features(shadow=ShadowParts(journal, Same())))
    assert gateway.reconfigure({"shadow": {"journal": True}})
    with TestClient(gateway.app) as client:
        yield client, journal


def _tags(journal, rid: str) -> dict[str, str]:
    import time

    deadline = time.monotonic() + 5
    while (record := journal.request(rid)) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return record.tags if record is not None else {}


@pytest.mark.parametrize("field", sorted(CHAT_CASES))
def test_every_chat_field_has_its_effect_or_is_refused(journaled, engines, field):
    client, journal = journaled
    value, holds = CHAT_CASES[field]
    body = {"model": "small", "messages": [{"role": "user", "content": "hi there"}], "max_tokens": 3,
            **NEEDS.get(field, {}), field: value}
    r = client.post(CHAT, json=body)
    tags = _tags(journal, r.headers["x-request-id"]) if r.status_code == 200 else {}
    seen = engines[r.headers.get("x-gateway-tier", "small")].seen[-1] if r.status_code == 200 else None
    assert holds(seen, r, tags), (field, r.status_code, r.text[:300])


@pytest.mark.parametrize("field", sorted(COMPLETION_CASES))
def test_every_completions_field_has_its_effect_or_is_refused(journaled, engines, field):
    client, journal = journaled
    value, holds = COMPLETION_CASES[field]
    body = {"model": "small", "prompt": "hi there", "max_tokens": 3, **NEEDS.get(field, {}), field: value}
    r = client.post("/v1/completions", json=body)
    tags = _tags(journal, r.headers["x-request-id"]) if r.status_code == 200 else {}
    seen = engines[r.headers.get("x-gateway-tier", "small")].seen[-1] if r.status_code == 200 else None
    assert holds(seen, r, tags), (field, r.status_code, r.text[:300])
