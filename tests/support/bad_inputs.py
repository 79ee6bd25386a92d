"""Malformed request classes: each must get an OpenAI-shaped 4xx and hurt nothing.

Shared by the in-process API sweep and the end-to-end sweep against the real app.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
USER = [{"role": "user", "content": "hello"}]


@dataclass(frozen=True)
class Case:
    name: str
    status: int
    body: bytes
    path: str = CHAT
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})


def chat(**fields: object) -> bytes:
    return json.dumps({"model": "small", "messages": USER, "max_tokens": 2, **fields}).encode()


def without(key: str) -> bytes:
    body = {"model": "small", "messages": USER, "max_tokens": 2}
    del body[key]
    return json.dumps(body).encode()


def cases(max_body_bytes: int) -> list[Case]:
    return [
        Case("truncated json", 400, b'{"model": "small", "messages": [{"role": "us'),
        Case("empty body", 400, b""),
        Case("json array body", 400, b"[]"),
        Case("json string body", 400, b'"hello"'),
        Case("json null body", 400, b"null"),
        Case("deeply nested json", 400, b"[" * 5000 + b"]" * 5000),
        Case("integer over 4,300 digits", 400, b'{"model": "small", "messages": [], "max_tokens": ' + b"9" * 5000 + b"}"),
        Case("missing model", 400, without("model")),
        Case("empty model", 400, chat(model="")),
        Case("model wrong type", 400, chat(model=42)),
        Case("unknown model", 404, chat(model="gpt-17")),
        Case("unknown adapter domain", 404, chat(model="small:nonexistent")),
        Case("missing messages", 400, without("messages")),
        Case("empty messages", 400, chat(messages=[])),
        Case("messages not a list", 400, chat(messages="hello")),
        Case("message without role", 400, chat(messages=[{"content": "hi"}])),
        Case("unknown role", 400, chat(messages=[{"role": "wizard", "content": "hi"}])),
        Case("content wrong type", 400, chat(messages=[{"role": "user", "content": 12}])),
        Case("image content part", 400, chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}])),
        Case("only empty content", 400, chat(messages=[{"role": "user", "content": "   "}])),
        Case("negative max_tokens", 400, chat(max_tokens=-5)),
        Case("zero max_tokens", 400, chat(max_tokens=0)),
        Case("max_tokens as text", 400, chat(max_tokens="ten")),
        Case("huge max_tokens", 400, chat(max_tokens=10**30)),
        Case("max_tokens as float", 400, chat(max_tokens=2.5)),
        Case("temperature too high", 400, chat(temperature=7)),
        Case("temperature as text", 400, chat(temperature="hot")),
        Case("temperature NaN", 400, b'{"model": "small", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}'),
        Case("top_p zero", 400, chat(top_p=0)),
        Case("n above the cap", 400, chat(n=9)),
        Case("too many stop strings", 400, chat(stop=["a", "b", "c", "d", "e"])),
        Case("empty stop string", 400, chat(stop=[""])),
        Case("seed out of range", 400, chat(seed=2**70)),
        Case("stream not a boolean", 400, chat(stream="maybe")),
        Case("stream_options wrong type", 400, chat(stream=True, stream_options="usage")),
        Case("a tool without a name", 400, chat(tools=[{"type": "function", "function": {}}])),
        Case("tool_choice required without tools", 400, chat(tool_choice="required")),
        Case("tool_choice naming no tool", 400, chat(
            tools=[{"type": "function", "function": {"name": "f"}}],
            tool_choice={"type": "function", "function": {"name": "g"}},
        )),
        Case("top_logprobs without logprobs", 400, chat(top_logprobs=2)),
        Case("json_schema without a schema", 400, chat(response_format={"type": "json_schema"})),
        Case("metadata not an object", 400, chat(metadata="billing")),
        Case("an unknown field", 400, chat(frequency_penalty=0.5)),
        Case("too many messages", 400, chat(messages=USER * 300)),
        Case("max_tokens over the cap", 400, chat(max_tokens=5000)),
        Case("prompt over the context", 400, chat(messages=[{"role": "user", "content": "word " * 5000}], max_tokens=2)),
        Case("invalid utf-8", 400, b'{"model": "small", "messages": [{"role": "user", "content": "\xff\xfe"}]}'),
        Case("wrong content type", 415, chat(), headers={"content-type": "text/plain"}),
        Case("form encoded", 415, b"model=small", headers={"content-type": "application/x-www-form-urlencoded"}),
        Case("body over the limit", 413, b'{"model": "small", "x": "' + b"a" * (max_body_bytes + 10) + b'"}'),
        Case("completions without prompt", 400, json.dumps({"model": "small"}).encode(), path=COMPLETIONS),
        Case("completions prompt wrong type", 400, json.dumps({"model": "small", "prompt": {"a": 1}}).encode(), path=COMPLETIONS),
        Case("completions echo", 400, json.dumps({"model": "small", "prompt": "hi", "echo": True}).encode(), path=COMPLETIONS),
    ]


def assert_openai_error(response, case: Case) -> None:
    assert response.status_code == case.status, (case.name, response.status_code, response.text[:300])
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, case.name
    assert isinstance(error["message"], str) and error["message"], case.name
