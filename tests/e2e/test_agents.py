"""Agents on the real app (Ray Serve + both embedded vLLM tiers) through the official
client: tool calls whose arguments validate against the tool's schema (guided decoding
makes this hold even on the 135M model), JSON-schema answers, streamed tool calls the SDK
assembles, n choices, logprobs, and the Responses API, streamed and not."""

from __future__ import annotations

import json

import jsonschema
import pytest

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 40}, "unit": {"type": "string", "enum": ["c", "f"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
ORDER = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "An order by its number",
        "parameters": {
            # Bounded, as real tool schemas are: a 135M model given an unbounded number or
            # string may repeat a digit until max_tokens (valid JSON so far, never closed).
            "type": "object", "properties": {"order_id": {"type": "string", "maxLength": 12}}, "required": ["order_id"],
            "additionalProperties": False,
        },
    },
}
ASK = [{"role": "user", "content": "What is the weather in Paris today?"}]
TICKET = {
    "type": "object",
    "properties": {
        "category": {"type": "string", "enum": ["billing", "shipping", "account"]},
        "urgent": {"type": "boolean"},
    },
    "required": ["category", "urgent"],
    "additionalProperties": False,
}
SCHEMAS = {tool["function"]["name"]: tool["function"]["parameters"] for tool in (WEATHER, ORDER)}


def assert_valid_calls(calls) -> None:
    assert calls, "no tool call"
    for call in calls:
        jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])


@pytest.mark.parametrize("model", ["small", "large"])
def test_tool_choice_required_gives_a_call_that_validates(client, model):
    # One call: with parallel calls allowed a 135M model may list calls until max_tokens.
    answer = client.chat.completions.create(
        model=model, messages=ASK, tools=[WEATHER, ORDER], tool_choice="required", parallel_tool_calls=False,
        max_tokens=60, temperature=0,
    )
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert_valid_calls(choice.message.tool_calls)


def test_a_named_tool_is_the_one_called(client):
    answer = client.chat.completions.create(
        model="small", messages=ASK, tools=[WEATHER, ORDER], max_tokens=60, temperature=0,
        tool_choice={"type": "function", "function": {"name": "lookup_order"}},
    )
    calls = answer.choices[0].message.tool_calls
    assert [call.function.name for call in calls] == ["lookup_order"]
    assert_valid_calls(calls)


def test_the_tool_result_continues_the_conversation(client):
    first = client.chat.completions.create(
        model="small", messages=ASK, tools=[WEATHER], tool_choice="required", parallel_tool_calls=False, max_tokens=60, temperature=0,
    )
    call = first.choices[0].message.tool_calls[0]
    history = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21, "unit": "c"}'},
    ]
    answer = client.chat.completions.create(model="small", messages=history, tools=[WEATHER], max_tokens=20)
    assert answer.choices[0].message.content or answer.choices[0].message.tool_calls


def test_streamed_tool_calls_assemble(client):
    stream = client.chat.completions.create(
        model="small", messages=ASK, tools=[WEATHER], tool_choice="required", parallel_tool_calls=False, max_tokens=60, temperature=0,
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    for chunk in stream:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            call = calls.setdefault(delta.index, {"name": "", "arguments": ""})
            call["name"] += delta.function.name or ""
            call["arguments"] += delta.function.arguments or ""
    assert [c["name"] for c in calls.values()] == ["get_weather"]
    jsonschema.validate(json.loads(calls[0]["arguments"]), SCHEMAS["get_weather"])


@pytest.mark.parametrize("model", ["small", "large"])
def test_a_json_schema_answer_validates(client, model):
    answer = client.chat.completions.create(
        model=model, max_tokens=60, temperature=0,
        messages=[{"role": "user", "content": "Classify: I was charged twice for my order."}],
        response_format={"type": "json_schema", "json_schema": {"name": "ticket", "schema": TICKET, "strict": True}},
    )
    jsonschema.validate(json.loads(answer.choices[0].message.content), TICKET)


def test_json_object_is_a_json_object(client):
    answer = client.chat.completions.create(
        model="small", max_tokens=40, temperature=0, response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "Give the city and country of the Eiffel tower as JSON."}],
    )
    assert isinstance(json.loads(answer.choices[0].message.content), dict)


def test_n_gives_that_many_choices(client):
    answer = client.chat.completions.create(
        model="small", messages=[{"role": "user", "content": "Say hi"}], n=2, max_tokens=5, seed=1,
    )
    assert [c.index for c in answer.choices] == [0, 1]
    assert answer.usage.completion_tokens >= 2


def test_logprobs_come_back(client):
    answer = client.chat.completions.create(
        model="small", messages=[{"role": "user", "content": "Say hi"}], max_tokens=4, logprobs=True,
        top_logprobs=2,
    )
    tokens = answer.choices[0].logprobs.content
    assert tokens and all(t.logprob <= 0 and len(t.top_logprobs) == 2 for t in tokens)
    text = client.completions.create(model="small", prompt="The capital of France is", max_tokens=3, logprobs=1)
    assert len(text.choices[0].logprobs.tokens) == len(text.choices[0].logprobs.token_logprobs) > 0


def test_auto_picks_a_tier_that_can(client, http):
    # Both embedded tiers can; the answer says which served it, and it was a tool call.
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=ASK, tools=[WEATHER], tool_choice="required", parallel_tool_calls=False, max_tokens=60, temperature=0,
    )
    assert raw.headers["x-gateway-tier"] in ("small", "large")
    assert_valid_calls(raw.parse().choices[0].message.tool_calls)
    cards = {card["id"]: card for card in http.get("/v1/models").json()["data"]}
    assert set(cards["small"]["capabilities"]) == {"tools", "json_schema", "n", "logprobs"}


def test_responses_api_with_a_tool(client):
    tool = {"type": "function", "name": "get_weather", "parameters": WEATHER["function"]["parameters"]}
    response = client.responses.create(
        model="small", input="What is the weather in Paris?", tools=[tool], tool_choice="required", parallel_tool_calls=False,
        max_output_tokens=60, temperature=0,
    )
    calls = [item for item in response.output if item.type == "function_call"]
    assert calls and calls[0].name == "get_weather"
    jsonschema.validate(json.loads(calls[0].arguments), SCHEMAS["get_weather"])
    follow = client.responses.create(
        model="small", max_output_tokens=20,
        input=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {"type": "function_call", "call_id": calls[0].call_id, "name": "get_weather", "arguments": calls[0].arguments},
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": '{"temperature": 21}'},
        ],
    )
    assert follow.output_text or any(item.type == "function_call" for item in follow.output)
    assert follow.usage.input_tokens > 0


def test_responses_api_streamed(client):
    events = list(client.responses.create(model="small", input="Say hello", max_output_tokens=8, stream=True))
    kinds = [event.type for event in events]
    assert kinds[0] == "response.created" and "response.output_text.delta" in kinds
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert events[-1].response.usage.output_tokens > 0
