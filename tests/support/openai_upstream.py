"""An OpenAI-compatible upstream for the remote tier's tests, served by uvicorn on a free
loopback port in a thread: scripted failures, and a record of what it saw (the bearer
key, the bodies, the streams whose client went away).

It honours what an agent asks the way vLLM answers it: `n` choices (choice i starts i
words later), logprobs in the chat or the completions format, and with `tool_choice`
`required` or a named function a tool call (`{"city": "Paris"}`), streamed as vLLM
streams one: id and name first, the arguments in two fragments."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta")


@dataclass
class Canned:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Upstream:
    """What the upstream answers next, and what it has seen."""

    models: set[str] = field(default_factory=lambda: {"big-upstream", "lora-refund"})
    usage: bool = True  # False: answers carry no usage, as some servers do
    token_delay_s: float = 0.0
    metrics: str = ""
    metrics_status: int = 200
    seen: list[dict[str, Any]] = field(default_factory=list)
    canned: deque[Canned] = field(default_factory=deque)
    disconnected: threading.Event = field(default_factory=threading.Event)
    # Set: a stream's first token goes out alone, the rest once a test sets the gate (threads:
    # the server has a loop of its own).
    gate: threading.Event | None = None

    def fail_next(
        self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        body = {"error": {"message": message, "type": "upstream_error", "param": None, "code": code}}
        self.canned.extend(Canned(status, body, headers or {}) for _ in range(times))

    def reset(self) -> None:
        self.usage, self.token_delay_s, self.metrics_status = True, 0.0, 200
        self.gate = None
        self.seen.clear()
        self.canned.clear()
        self.disconnected.clear()

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [call for call in self.seen if call["path"] == path]

    # ---- the app ---------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/v1/chat/completions", self._generate, methods=["POST"]),
            Route("/v1/completions", self._generate, methods=["POST"]),
            Route("/v1/models", self._models),
            Route("/metrics", self._metrics),
        ])

    async def _generate(self, request: Request) -> Response:
        body = await request.json()
        self.seen.append({"path": request.url.path, "auth": request.headers.get("authorization"), "body": body,
                          "cookie": request.headers.get("cookie"),
                          "peer": request.client and (request.client.host, request.client.port)})
        if self.canned:
            answer = self.canned.popleft()
            return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)
        if body.get("model") not in self.models:
            message = f"The model `{body.get('model')}` does not exist."
            return JSONResponse(
                {"error": {"message": message, "type": "invalid_request_error", "param": "model",
                           "code": "model_not_found"}}, status_code=404,
            )
        chat = request.url.path.endswith("chat/completions")
        answer = _Answer(body, chat)
        if body.get("stream"):
            include_usage = (body.get("stream_options") or {}).get("include_usage", False)
            events = self._events(answer, include_usage)
            return StreamingResponse(events, media_type="text/event-stream")
        payload: dict[str, Any] = {"id": "up-1", "object": "chat.completion", "choices": answer.whole()}
        if self.usage:
            payload["usage"] = _usage(answer.tokens())
        return JSONResponse(payload)

    async def _events(self, answer: "_Answer", include_usage: bool) -> AsyncIterator[str]:
        finished = False
        try:
            if answer.chat:  # like vLLM and OpenAI: the role first, with no content
                roles = [{"index": i, "delta": {"role": "assistant", "content": ""}} for i in range(answer.n)]
                yield _sse({"choices": roles})
            for step, choices in enumerate(answer.steps()):
                if step == 1 and self.gate is not None:
                    await asyncio.to_thread(self.gate.wait, 10.0)
                await asyncio.sleep(self.token_delay_s)
                yield _sse({"choices": choices, "usage": None})
            if include_usage and self.usage:
                yield _sse({"choices": [], "usage": _usage(answer.tokens())})
            yield "data: [DONE]\n\n"
            finished = True
        finally:
            if not finished:
                self.disconnected.set()

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": name, "object": "model"} for name in sorted(self.models)]})

    async def _metrics(self, request: Request) -> Response:
        return PlainTextResponse(self.metrics, status_code=self.metrics_status)


ARGUMENT_PIECES = ('{"city": ', '"Paris"}')


class _Answer:
    """What the upstream answers one body: whole, or step by step as stream events."""

    def __init__(self, body: dict[str, Any], chat: bool) -> None:
        self.chat = chat
        self.n = body.get("n") or 1
        self.words = body.get("max_tokens") or 5
        self.top = _top_k(body, chat)
        self.tool = _forced_tool(body) if chat else None

    def tokens(self) -> int:
        return self.n * (len(ARGUMENT_PIECES) if self.tool else self.words)

    def whole(self) -> list[dict[str, Any]]:
        return [self._whole(i) for i in range(self.n)]

    def steps(self) -> list[list[dict[str, Any]]]:
        pieces = [self._pieces(i) for i in range(self.n)]
        return [[choice[step] for choice in pieces] for step in range(len(pieces[0]))]

    def _text(self, i: int) -> list[str]:
        return [WORDS[(i + j) % len(WORDS)] for j in range(self.words)]

    def _whole(self, i: int) -> dict[str, Any]:
        if self.tool:
            function = {"name": self.tool, "arguments": "".join(ARGUMENT_PIECES)}
            call = {"id": f"call-{i}", "type": "function", "function": function}
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            return {"index": i, "finish_reason": "tool_calls", "message": message, "logprobs": None}
        words = self._text(i)
        choice: dict[str, Any] = {"index": i, "finish_reason": "length", "logprobs": self._logprobs(words)}
        text = " ".join(words)
        choice.update({"message": {"role": "assistant", "content": text}} if self.chat else {"text": text})
        return choice

    def _pieces(self, i: int) -> list[dict[str, Any]]:
        if self.tool:
            function = {"name": self.tool, "arguments": ""}
            first = {"index": 0, "id": f"call-{i}", "type": "function", "function": function}
            rest = [{"index": 0, "function": {"arguments": piece}} for piece in ARGUMENT_PIECES]
            calls = [first, *rest]
            finishes = [None] * (len(calls) - 1) + ["tool_calls"]
            return [{"index": i, "delta": {"tool_calls": [call]}, "finish_reason": finish}
                    for call, finish in zip(calls, finishes)]
        words = self._text(i)
        pieces = []
        for j, word in enumerate(words):
            text = word if j == 0 else f" {word}"
            piece: dict[str, Any] = {"index": i, "finish_reason": "length" if j == len(words) - 1 else None}
            piece.update({"delta": {"content": text}} if self.chat else {"text": text})
            piece["logprobs"] = self._logprobs([word])
            pieces.append(piece)
        return pieces

    def _logprobs(self, words: list[str]) -> dict[str, Any] | None:
        if self.top is None:
            return None
        # Each word was chosen at -0.5; its runner-up is always "omega", at -2.0.
        tops = [[(word, -0.5), ("omega", -2.0)][: self.top] for word in words]
        if self.chat:
            return {"content": [
                {**_chat_logprob(word, -0.5), "top_logprobs": [_chat_logprob(*top) for top in alternatives]}
                for word, alternatives in zip(words, tops)
            ]}
        return {"tokens": words, "token_logprobs": [-0.5] * len(words), "text_offset": [0] * len(words),
                "top_logprobs": [dict(alternatives) for alternatives in tops]}


def _top_k(body: dict[str, Any], chat: bool) -> int | None:
    if chat:
        return (body.get("top_logprobs") or 0) if body.get("logprobs") else None
    return body.get("logprobs")


def _chat_logprob(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}


def _forced_tool(body: dict[str, Any]) -> str | None:
    """The function a tool_choice forces: `required` takes the first tool."""
    choice, tools = body.get("tool_choice"), body.get("tools") or []
    if isinstance(choice, dict):
        return choice["function"]["name"]
    if choice == "required" and tools:
        return tools[0]["function"]["name"]
    return None


def _usage(completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": 11, "completion_tokens": completion_tokens, "total_tokens": 11 + completion_tokens}


def _sse(event: dict[str, Any]) -> str:
    return f"data: {json.dumps(event)}\n\n"


@contextmanager
def serving(upstream: Upstream) -> Iterator[str]:
    """The upstream on a free loopback port; yields its API root (`http://127.0.0.1:N/v1`)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(upstream.app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the mock upstream did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


VLLM_METRICS = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="big-upstream"} 3.0
vllm:num_requests_running{engine="1",model_name="big-upstream"} 2.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="big-upstream"} 4.0
vllm:num_requests_waiting{engine="1",model_name="big-upstream"} 0.0
vllm:gpu_cache_usage_perc{engine="0",model_name="big-upstream"} 0.25
"""
