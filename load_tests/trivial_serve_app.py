"""Ray Serve's own floor: the gateway's shape with none of its logic.

Ray's HTTP proxy -> an ingress deployment -> an engine deployment through a handle, both
`num_cpus=0`, as in `deployments/app.py`. The ingress reads the JSON body and hands it to
the engine; the engine answers a fixed OpenAI-shaped completion (or streams it, one
handle item per token, as the gateway's engine replicas do) after the same mock timing
(TTFT, inter-token latency, tokens). Row (e) of `load_tests/bench_gateway_only.py`.

    python load_tests/trivial_serve_app.py --port 9200 --tokens 8

With `--forward URL` it is the floor of row (d) instead: one deployment that posts the body
to an OpenAI server (the mock, row (a)) with the pooled client the remote tier uses (httpx's API
over aiohttp's pool) and returns its answer
(streams passed through as they come), as the gateway's ingress calls a remote tier
directly; no handle, no logic. Row (f).

    python load_tests/trivial_serve_app.py --port 9201 --forward http://127.0.0.1:9100/v1

Starts its own local Ray (never joins a running one), prints `ready` when it answers,
serves until SIGTERM/SIGINT, then shuts Serve and that Ray down.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any, AsyncIterator

import httpx
from httpx_aiohttp import HttpxAiohttpClient
from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from deployments.cli import wait_for_signal

WORD = "token"


@serve.deployment(max_ongoing_requests=256, ray_actor_options={"num_cpus": 0})
class TrivialEngine:
    def __init__(self, ttft_s: float, itl_s: float, tokens: int) -> None:
        self._ttft_s, self._itl_s, self._tokens = ttft_s, itl_s, tokens

    async def generate(self, body: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(self._ttft_s + self._itl_s * (self._tokens - 1))
        text = " ".join([WORD] * self._tokens)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "trivial"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": self._tokens, "total_tokens": 1 + self._tokens},
        }

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[str]:
        await asyncio.sleep(self._ttft_s)
        for i in range(self._tokens):
            if i:
                await asyncio.sleep(self._itl_s)
            yield WORD if i == 0 else f" {WORD}"


@serve.deployment(max_ongoing_requests=1024, ray_actor_options={"num_cpus": 0})
class TrivialIngress:
    def __init__(self, engine: DeploymentHandle) -> None:
        self._engine = engine
        self._streaming = engine.options(stream=True)

    async def __call__(self, request: Request) -> Response:
        body = await request.json()
        if body.get("stream"):
            return StreamingResponse(self._sse(body), media_type="text/event-stream")
        return JSONResponse(await self._engine.generate.remote(body))

    async def _sse(self, body: dict[str, Any]) -> AsyncIterator[str]:
        base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body.get("model", "trivial")}
        async for text in self._streaming.stream.remote(body):
            chunk = {**base, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"


@serve.deployment(max_ongoing_requests=1024, ray_actor_options={"num_cpus": 0})
class TrivialForward:
    """Row (f): the body to an OpenAI server and its answer back, nothing else."""

    def __init__(self, base_url: str) -> None:
        self._url = f"{base_url.rstrip('/')}/chat/completions"
        # The remote tier's client (engines/openai_remote.py), so (f) is (d)'s floor, not a different pool.
        self._client = HttpxAiohttpClient(limits=httpx.Limits(max_connections=256), timeout=httpx.Timeout(60.0))

    async def __call__(self, request: Request) -> Response:
        body = await request.body()
        headers = {"content-type": "application/json"}
        upstream = await self._client.send(
            self._client.build_request("POST", self._url, content=body, headers=headers), stream=True)
        if upstream.headers.get("content-type", "").startswith("text/event-stream"):
            return StreamingResponse(self._relay(upstream), media_type="text/event-stream")
        content = await upstream.aread()
        await upstream.aclose()
        return Response(content, status_code=upstream.status_code, media_type="application/json")

    @staticmethod
    async def _relay(upstream: httpx.Response) -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        finally:
            await upstream.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    parser.add_argument("--ttft-s", type=float, default=0.0)
    parser.add_argument("--itl-s", type=float, default=0.0)
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--forward", default=None,
                        help="an OpenAI server's /v1 URL: row (f), the floor of the remote-tier row")
    args = parser.parse_args()

    import ray

    # address="local": a new Ray of its own even when another one runs on this machine.
    ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False, namespace="trivial")
    try:
        serve.start(http_options={"host": args.host, "port": args.port})
        app = (TrivialForward.bind(args.forward) if args.forward
               else TrivialIngress.bind(TrivialEngine.bind(args.ttft_s, args.itl_s, args.tokens)))
        serve.run(app, name="trivial", route_prefix="/")
        print("ready", flush=True)
        wait_for_signal()
        serve.shutdown()
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
