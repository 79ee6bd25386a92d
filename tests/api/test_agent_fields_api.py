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
