"""Agent fields through a remote tier (a real `vllm serve` upstream): passed through
unchanged, answered by the upstream's own structured outputs, read back whole."""

from __future__ import annotations

import json

import jsonschema

from tests.e2e.test_agents import ASK, ORDER, SCHEMAS, TICKET, WEATHER, assert_valid_calls


def test_required_and_named_tools_through_the_remote_tier(client):
    raw = client.chat.completions.with_raw_response.create(
        model="large", messages=ASK, tools=[WEATHER, ORDER], tool_choice="required", parallel_tool_calls=False,
        max_tokens=60, temperature=0,
    )
    assert raw.headers["x-gateway-tier"] == "large"
    assert_valid_calls(raw.parse().choices[0].message.tool_calls)
    named = client.chat.completions.create(
        model="large", messages=ASK, tools=[WEATHER, ORDER], max_tokens=60, temperature=0,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    calls = named.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather"]
    assert_valid_calls(calls)


def test_a_streamed_named_call_assembles_through_the_remote_tier(client):
    stream = client.chat.completions.create(
        model="large", messages=ASK, tools=[WEATHER], max_tokens=60, temperature=0, stream=True,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    arguments = "".join(
        delta.function.arguments or ""
        for chunk in stream if chunk.choices
        for delta in chunk.choices[0].delta.tool_calls or []
    )
    jsonschema.validate(json.loads(arguments), SCHEMAS["get_weather"])


def test_json_schema_n_and_logprobs_through_the_remote_tier(client):
    answer = client.chat.completions.create(
        model="large", max_tokens=60, temperature=0.7, seed=3, n=2, logprobs=True, top_logprobs=1,
        messages=[{"role": "user", "content": "Classify: I was charged twice for my order."}],
        response_format={"type": "json_schema", "json_schema": {"name": "ticket", "schema": TICKET}},
    )
    assert [c.index for c in answer.choices] == [0, 1]
    for choice in answer.choices:
        jsonschema.validate(json.loads(choice.message.content), TICKET)
        assert choice.logprobs.content and choice.logprobs.content[0].top_logprobs
