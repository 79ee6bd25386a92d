"""Agent fields through a remote tier (a real `vllm serve` upstream): passed through
unchanged and read back whole, so the gateway's answer is the upstream's own answer to the
same request (greedy): tool calls, a JSON-schema answer, n choices, logprobs."""

from __future__ import annotations

import openai

from tests.e2e.test_agents import ASK, TICKET
from tests.e2e_remote.test_remote_tier import LARGE

UNIT = {
    "type": "function",
    "function": {
        "name": "set_unit", "description": "The temperature unit to answer in",
        "parameters": {
            "type": "object", "properties": {"unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["unit"],
            "additionalProperties": False,
        },
    },
}


def direct(upstream: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{upstream}/v1", api_key="unused", max_retries=0, timeout=300)


def calls_of(answer) -> list[tuple[str, str]]:
    return [(c.function.name, c.function.arguments) for c in answer.choices[0].message.tool_calls or []]


def test_tool_choices_reach_the_upstream_and_its_calls_come_back(client, upstream):
    for choice in ("required", {"type": "function", "function": {"name": "set_unit"}}):
        args = dict(messages=ASK, tools=[UNIT], tool_choice=choice, max_tokens=40, temperature=0)
        mine = direct(upstream).chat.completions.create(model=LARGE, **args)
        raw = client.chat.completions.with_raw_response.create(model="large", **args)
        via = raw.parse()
        assert raw.headers["x-gateway-tier"] == "large"
        assert calls_of(via) == calls_of(mine)
        assert via.choices[0].finish_reason == mine.choices[0].finish_reason


def assembled(stream) -> tuple[str, str]:
    names, arguments = "", ""
    for chunk in stream:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            names += delta.function.name or ""
            arguments += delta.function.arguments or ""
    return names, arguments


def test_a_streamed_named_call_is_the_upstreams_own_stream(client, upstream):
    args = dict(messages=ASK, tools=[UNIT], tool_choice={"type": "function", "function": {"name": "set_unit"}},
                max_tokens=40, temperature=0, stream=True)
    mine = assembled(direct(upstream).chat.completions.create(model=LARGE, **args))
    via = assembled(client.chat.completions.create(model="large", **args))
    assert via == mine and via[0] == "set_unit"


def test_json_schema_n_and_logprobs_reach_the_upstream(client, upstream):
    args = dict(
        max_tokens=30, temperature=0, logprobs=True, top_logprobs=1,
        messages=[{"role": "user", "content": "Classify: I was charged twice for my order."}],
        response_format={"type": "json_schema", "json_schema": {"name": "ticket", "schema": TICKET}},
    )
    mine = direct(upstream).chat.completions.create(model=LARGE, **args)
    via = client.chat.completions.create(model="large", **args)
    assert via.choices[0].message.content == mine.choices[0].message.content
    assert [t.token for t in via.choices[0].logprobs.content] == [t.token for t in mine.choices[0].logprobs.content]
    two = client.chat.completions.create(model="large", messages=ASK, max_tokens=4, n=2, temperature=0.8, seed=1)
    assert [c.index for c in two.choices] == [0, 1]
