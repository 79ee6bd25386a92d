"""A bare OpenAI-shaped server over the mock engine (`engines/mock.py`): no gateway, no Ray.

The floor of `load_tests/bench_gateway_only.py`, and the upstream its LiteLLM and
remote-tier rows sit in front of: `POST /v1/chat/completions` (JSON, or SSE with
`stream_options.include_usage`), `GET /v1/models`, `GET /health`. Answers come from the
same `MockEngine` a `kind=mock` tier runs, so timing (TTFT, inter-token latency, tokens)
and text are the same as behind the gateway.

    python load_tests/mock_openai_server.py --port 9100 --ttft-s 0 --itl-s 0 --tokens 8
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from typing import Any, AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from engines.config import MockTierSettings
from engines.errors import ContextLengthExceeded
from engines.mock import MockEngine, MockSpec
from engines.types import ChatTurn, GenerationRequest, SamplingSpec

ROLES = ("system", "user", "assistant")


def build_app(settings: MockTierSettings, max_model_len: int = 32768) -> Starlette:
    engine = MockEngine(MockSpec(settings=settings, max_model_len=max_model_len))

    async def chat(request: Request) -> Response:
        body = await request.json()
        model = str(body.get("model", "mock"))
        try:
            generation = _generation_request(body)
            if body.get("stream"):
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                # The first chunk is produced here, so a refusal still gets a real status.
                chunks = engine.stream(generation)
                first = await anext(chunks)
                return StreamingResponse(
                    _sse(first, chunks, model, include_usage), media_type="text/event-stream"
                )
            result = await engine.generate(generation)
        except ContextLengthExceeded as exc:
            return _error(400, str(exc), "BadRequestError")
        except (ValueError, TypeError, KeyError) as exc:
            return _error(400, f"invalid request: {exc}", "BadRequestError")
        usage = result.usage
        return JSONResponse({
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": result.text},
                         "finish_reason": result.finish_reason}],
            "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
                      "total_tokens": usage.total_tokens},
        })

    async def models(_: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "mock", "object": "model", "owned_by": "mock"}]})

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ])


def _generation_request(body: dict[str, Any]) -> GenerationRequest:
    turns = [
        ChatTurn(role=m["role"] if m["role"] in ROLES else "user", content=_text(m.get("content")))
        for m in body["messages"]
    ]
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    return GenerationRequest(
        request_id=uuid.uuid4().hex, messages=turns, sampling=SamplingSpec(max_tokens=max_tokens)
    )


def _text(content: Any) -> str:
    if isinstance(content, list):  # content parts
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


async def _sse(first: Any, rest: AsyncIterator[Any], model: str, include_usage: bool) -> AsyncIterator[str]:
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def event(delta: dict[str, Any], finish: str | None) -> str:
        chunk = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(chunk)}\n\n"

    yield event({"role": "assistant", "content": ""}, None)
    chunk, usage = first, first.usage
    while True:
        usage = chunk.usage
        yield event({"content": chunk.text}, chunk.finish_reason)
        try:
            chunk = await anext(rest)
        except StopAsyncIteration:
            break
    if include_usage:
        tail = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [],
                "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
                          "total_tokens": usage.total_tokens}}
        yield f"data: {json.dumps(tail)}\n\n"
    yield "data: [DONE]\n\n"


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": status}}, status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--ttft-s", type=float, default=0.0)
    parser.add_argument("--itl-s", type=float, default=0.0)
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--max-concurrency", type=int, default=1024)
    args = parser.parse_args()
    settings = MockTierSettings(
        ttft_s=args.ttft_s, itl_s=args.itl_s, output_tokens=args.tokens, max_concurrency=args.max_concurrency
    )
    uvicorn.run(build_app(settings), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
