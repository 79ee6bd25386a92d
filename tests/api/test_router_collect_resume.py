"""`router collect` against an OpenAI-shaped stub: killed half-way, rerun, nothing lost or redone.

The stub answers a fixed number of requests, then holds every later one until its client
is gone: the kill therefore lands when the checkpoint holds exactly those answers and no
answer is on the wire, so "asked twice" can be counted exactly, on the server's side.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import openai
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from router.collect import AskSettings, Collection, GatewayUnavailable, load_queries, write_answers

KEY = "collect-test-key"
Pair = tuple[str, str]  # (model, prompt)


@dataclass
class StubGateway:
    """Deterministic chat completions; counts what it answered and when it was asked."""

    models: set[str]
    unavailable: set[str] = field(default_factory=set)  # these answer 503, always
    delay_s: float = 0.01
    hold_after: int | None = None  # answers beyond this many wait until their client goes away
    rate_limit_first: set[Pair] = field(default_factory=set)  # first request: 429, Retry-After 0.2
    answered: Counter[Pair] = field(default_factory=Counter)
    asked_at: dict[Pair, list[float]] = field(default_factory=lambda: defaultdict(list))
    rate_limited: Counter[Pair] = field(default_factory=Counter)
    bodies: list[dict] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        pair = (body["model"], body["messages"][-1]["content"])
        with self.lock:
            self.asked_at[pair].append(time.monotonic())
            self.bodies.append(body)
            self.keys.add(request.headers.get("authorization", ""))
            first = len(self.asked_at[pair]) == 1
        if pair[0] in self.unavailable:
            return error(503, f"The {pair[0]} tier is unavailable.")
        if pair[0] not in self.models:
            return error(404, f"The model `{pair[0]}` does not exist.")
        if first and pair in self.rate_limit_first:
            with self.lock:
                self.rate_limited[pair] += 1
            return error(429, "Rate limit reached.", {"Retry-After": "0.2"})
        await asyncio.sleep(self.delay_s)
        if not self._take_answer(pair):
            while not await request.is_disconnected():
                await asyncio.sleep(0.05)
            return Response(status_code=499)
        return JSONResponse(completion(*pair))

    def _take_answer(self, pair: Pair) -> bool:
        with self.lock:
            if self.hold_after is not None and sum(self.answered.values()) >= self.hold_after:
                return False
            self.answered[pair] += 1
            return True


def answer_of(model: str, prompt: str) -> str:
    return f"{model} says {prompt[::-1]}"


def completion(model: str, prompt: str) -> dict:
    return {
        "id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": answer_of(model, prompt)}}],
        "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": 3,
                  "total_tokens": len(prompt.split()) + 3},
    }


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    kind = "rate_limit_error" if status == 429 else "invalid_request_error"
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return JSONResponse(body, status_code=status, headers=headers)


@contextmanager
def serving(stub: StubGateway) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(stub.app(), log_level="warning", lifespan="off",
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the stub server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def router_collect(args: list[str], log: Path, cache: Path) -> subprocess.Popen:
    script = Path(sys.executable).parent / "router"  # the console script: its wiring is tested too
    command = [str(script), "collect"]
    if not script.exists():  # not installed: the module runs the same command function
        command = [sys.executable, "-m", "router.collect_cli"]
    env = {**os.environ, "COLLECT_KEY": KEY, "GATEWAY_CACHE_DIR": str(cache)}
    with log.open("ab") as handle:
        return subprocess.Popen([*command, *args], stdout=handle, stderr=subprocess.STDOUT, env=env)


def complete_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


TARGETS = ["small", "large"]
PROMPTS = [f"question number {i}, about topic {i % 5}?" for i in range(30)]


def test_killed_half_way_and_rerun_loses_nothing_and_asks_nothing_twice(tmp_path: Path):
    data = tmp_path / "queries.csv"
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "reference", "category"])
        writer.writerows([p, f"ref {i}", f"topic{i % 5}"] for i, p in enumerate(PROMPTS))
        writer.writerow([PROMPTS[0], "a repeat", "dup"])  # the same prompt: one query
    out, log = tmp_path / "answers.csv", tmp_path / "collect.log"
    checkpoint = tmp_path / "answers.csv.partial.jsonl"  # the default: next to --out
    pairs = len(PROMPTS) * len(TARGETS)
    half = pairs // 2
    limited = ("large", PROMPTS[1])
    stub = StubGateway(models=set(TARGETS), hold_after=half, rate_limit_first={limited})

    with serving(stub) as base_url:
        args = ["--data", str(data), "--out", str(out), "--base-url", base_url, "--api-key-env",
                "COLLECT_KEY", "--target", "small", "--target", "large", "--timeout", "120"]
        first = router_collect(args, log, tmp_path / "cache")
        try:
            wait_for(lambda: complete_lines(checkpoint) >= half, 180, f"{half} answers on disk")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=60)
        assert complete_lines(checkpoint) == half and not out.exists()

        stub.hold_after = None
        second = router_collect(args, log, tmp_path / "cache")
        assert second.wait(timeout=300) == 0, log.read_text()

    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["prompt"] for r in rows) == sorted(PROMPTS)  # each query once
    for row in rows:
        for target in TARGETS:
            assert row[f"answer:{target}"] == answer_of(target, row["prompt"])
            assert row[f"tokens:{target}"] == "3" and float(row[f"latency_s:{target}"]) >= 0
    assert rows[0]["reference"] == "ref 0" and "error:large" not in rows[0]

    expected = {(t, p) for p in PROMPTS for t in TARGETS}
    assert set(stub.answered) == expected  # nothing lost
    assert set(stub.answered.values()) == {1}  # nothing answered twice, across both runs
    assert stub.rate_limited == Counter({limited: 1})
    retried = stub.asked_at[limited]
    assert len(retried) >= 2 and retried[1] - retried[0] >= 0.18  # Retry-After: 0.2 was honoured
    assert {(b["temperature"], b["max_tokens"]) for b in stub.bodies} == {(0, 128)}  # greedy
    assert stub.keys == {f"Bearer {KEY}"} and KEY not in log.read_text()


async def test_an_unknown_target_is_recorded_once_and_not_asked_again(tmp_path: Path):
    data = tmp_path / "queries.jsonl"
    system = {"role": "system", "content": "be brief"}
    rows = [{"messages": [system, {"role": "user", "content": p}]} for p in PROMPTS[:4]]
    data.write_text("\n".join(json.dumps(r) for r in rows))
    stub = StubGateway(models={"small"})
    checkpoint = tmp_path / "ck.jsonl"
    settings = AskSettings(concurrency=2, max_tokens=16)

    with serving(stub) as base_url:
        client = openai.AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0, timeout=60)
        async with client:
            job = Collection(load_queries(data), ["small", "small:nope"], checkpoint)
            await job.run(client, settings)
            again = Collection(load_queries(data), ["small", "small:nope"], checkpoint)
            await again.run(client, settings)  # everything is in the checkpoint: nothing asked

    assert again.resumed == 8 and again.pending() == []
    assert all(len(times) == 1 for times in stub.asked_at.values()) and len(stub.asked_at) == 8
    assert {t: len(r) for t, r in again.errors().items()} == {"small:nope": 4}
    out = tmp_path / "answers.jsonl"
    write_answers(out, again.rows())
    first = json.loads(out.read_text().splitlines()[0])
    assert first["error:small:nope"] == "404: The model `small:nope` does not exist."
    assert first["answer:small:nope"] is None
    assert first["answer:small"] == answer_of("small", PROMPTS[0]) and len(first["messages"]) == 2


async def test_a_target_that_stays_unavailable_stops_the_run_and_keeps_what_is_done(tmp_path: Path):
    data = tmp_path / "queries.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": p}) for p in PROMPTS[:3]))
    stub = StubGateway(models={"small"}, unavailable={"large"})
    checkpoint = tmp_path / "ck.jsonl"
    settings = AskSettings(concurrency=1, attempts=3, backoff_s=0.01)

    with serving(stub) as base_url:
        client = openai.AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0, timeout=60)
        async with client:
            job = Collection(load_queries(data), ["small", "large"], checkpoint)
            with pytest.raises(GatewayUnavailable, match="large still failing after 3 tries: 503"):
                await job.run(client, settings)

    assert len(stub.asked_at[("large", PROMPTS[0])]) == 3  # the 503 was retried, then given up
    resumed = Collection(load_queries(data), ["small", "large"], checkpoint)
    assert set(resumed.records) == {(job.queries[0].id, "small")}  # kept; no error record for 503s
