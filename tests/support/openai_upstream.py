"""An OpenAI-compatible upstream for the remote tier's tests, served by uvicorn on a free
loopback port in a thread: scripted failures, and a record of what it saw (the bearer
key, the bodies, the streams whose client went away)."""

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

    def fail_next(
        self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        body = {"error": {"message": message, "type": "upstream_error", "param": None, "code": code}}
        self.canned.extend(Canned(status, body, headers or {}) for _ in range(times))

    def reset(self) -> None:
        self.usage, self.token_delay_s, self.metrics_status = True, 0.0, 200
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
        self.seen.append({"path": request.url.path, "auth": request.headers.get("authorization"), "body": body})
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
        words = [WORDS[i % len(WORDS)] for i in range(body.get("max_tokens") or 5)]
        if body.get("stream"):
            include_usage = (body.get("stream_options") or {}).get("include_usage", False)
            return StreamingResponse(self._events(words, chat, include_usage), media_type="text/event-stream")
        text = " ".join(words)
        choice = {"index": 0, "finish_reason": "length"}
        choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
        answer: dict[str, Any] = {"id": "up-1", "object": "chat.completion", "choices": [choice]}
        if self.usage:
            answer["usage"] = _usage(len(words))
        return JSONResponse(answer)

    async def _events(self, words: list[str], chat: bool, include_usage: bool) -> AsyncIterator[str]:
        finished = False
        try:
            if chat:  # like vLLM and OpenAI: the role first, with no content
                yield _sse({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
            for i, word in enumerate(words):
                await asyncio.sleep(self.token_delay_s)
                text = word if i == 0 else f" {word}"
                choice: dict[str, Any] = {"index": 0, "finish_reason": "length" if i == len(words) - 1 else None}
                choice.update({"delta": {"content": text}} if chat else {"text": text})
                yield _sse({"choices": [choice], "usage": None})
            if include_usage and self.usage:
                yield _sse({"choices": [], "usage": _usage(len(words))})
            yield "data: [DONE]\n\n"
            finished = True
        finally:
            if not finished:
                self.disconnected.set()

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": name, "object": "model"} for name in sorted(self.models)]})

    async def _metrics(self, request: Request) -> Response:
        return PlainTextResponse(self.metrics, status_code=self.metrics_status)


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
