"""Requests in flight: a cap per key and per ingress replica (429 concurrency_limit with
Retry-After), each slot released when its request ends: a finished stream, a client that
went away, a cancelled call (what Ray Serve does on a disconnect).

Driven as raw ASGI calls, so a stream can be held open, cut or cancelled mid-way.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import pytest

from gateway.access import Access
from gateway.assembly import Edge, Tiers, build_gateway
from gateway.auth import Authenticator, LocalRateLimiter
from gateway.catalog import TierSpec
from gateway.keys import KeyStore
from gateway.settings import LimitSettings
from tests.support.fake_engine import FakeEngine

CHAT = "/v1/chat/completions"
TIERS = {"small": TierSpec(served_name="tiny", max_model_len=256),
         "large": TierSpec(served_name="big", max_model_len=256)}
LONG = {"model": "small", "messages": [{"role": "user", "content": "a b c"}], "max_tokens": 100, "stream": True}
SHORT = {"model": "small", "messages": [{"role": "user", "content": "a b c"}], "max_tokens": 2}


@dataclass
class Call:
    """One ASGI request: its response's start and body, and a client that can go away."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    started: asyncio.Event = field(default_factory=asyncio.Event)  # the first body bytes arrived
    gone: asyncio.Event = field(default_factory=asyncio.Event)  # the client disconnects
    task: asyncio.Task | None = None

    def json(self) -> dict:
        return json.loads(self.body)


def call(app, body: dict, secret: str | None = None, path: str = CHAT) -> Call:
    result = Call()
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"host", b"127.0.0.1")]
    if secret is not None:
        headers.append((b"authorization", f"Bearer {secret}".encode()))
    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": headers, "scheme": "http", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5000)}
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}
        await result.gone.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            result.status = message["status"]
            result.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            result.body += message.get("body", b"")
            if result.body:
                result.started.set()

    result.task = asyncio.create_task(app(scope, receive, send))
    return result


@pytest.fixture
def store(tmp_path) -> KeyStore:
    return KeyStore(tmp_path / "keys.sqlite")


def slow_app(store: KeyStore | None, max_in_flight: int = 256, default_max_concurrent: int | None = None):
    engines = {"small": FakeEngine("tiny", max_model_len=256, token_delay_s=0.02),
               "large": FakeEngine("big", max_model_len=256)}
    access = Access(open=store is None, local=store is None)
    auth = Authenticator(store, LocalRateLimiter(), cache_ttl_s=0, access=access,
                         default_max_concurrent=default_max_concurrent)
    gateway = build_gateway(Tiers(engines, TIERS), LimitSettings(max_in_flight=max_in_flight), edge=Edge(auth=auth))
    return gateway.app, engines


async def finished(one: Call) -> Call:
    assert one.task is not None
    await asyncio.wait_for(one.task, 10)
    return one


async def streaming(one: Call) -> Call:
    await asyncio.wait_for(one.started.wait(), 10)
    assert one.status == 200
    return one


async def test_a_key_over_its_cap_gets_429_until_its_stream_ends(store):
    _, secret = store.create("app", max_concurrent=1)
    app, _ = slow_app(store)
    async with lifespan(app):
        first = await streaming(call(app, LONG, secret))
        refused = await finished(call(app, SHORT, secret))
        assert refused.status == 429 and refused.json()["error"]["code"] == "concurrency_limit"
        assert int(refused.headers["retry-after"]) >= 1 and "app" in refused.json()["error"]["message"]
        _, other = store.create("other", max_concurrent=1)
        assert (await finished(call(app, SHORT, other))).status == 200  # caps are per key
        await finished(first)
        assert b"[DONE]" in first.body
        assert (await finished(call(app, SHORT, secret))).status == 200


async def test_the_settings_default_caps_a_key_created_without_one(store):
    _, secret = store.create("app")
    app, _ = slow_app(store, default_max_concurrent=2)
    async with lifespan(app):
        held = [await streaming(call(app, LONG, secret)) for _ in range(2)]
        assert (await finished(call(app, SHORT, secret))).status == 429
        for one in held:
            one.gone.set()
            await finished(one)
        assert (await finished(call(app, SHORT, secret))).status == 200


async def test_a_client_that_goes_away_mid_stream_frees_its_slot(store):
    _, secret = store.create("app", max_concurrent=1)
    app, engines = slow_app(store)
    async with lifespan(app):
        first = await streaming(call(app, LONG, secret))
        first.gone.set()
        await finished(first)
        assert b"[DONE]" not in first.body and not engines["small"].running  # cut, and generation aborted
        assert (await finished(call(app, SHORT, secret))).status == 200


async def test_a_cancelled_call_frees_its_slot(store):
    """Ray Serve cancels the replica's call when the client disconnects."""
    _, secret = store.create("app", max_concurrent=1)
    app, _ = slow_app(store)
    async with lifespan(app):
        first = await streaming(call(app, LONG, secret))
        assert first.task is not None
        first.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first.task
        assert (await finished(call(app, SHORT, secret))).status == 200


async def test_the_replicas_cap_refuses_before_any_work_and_health_still_answers():
    app, engines = slow_app(None, max_in_flight=1)
    async with lifespan(app):
        first = await streaming(call(app, LONG))
        seen = len(engines["small"].seen)
        refused = await finished(call(app, SHORT))
        assert refused.status == 429 and refused.json()["error"]["code"] == "concurrency_limit"
        assert refused.headers["retry-after"] == "1" and len(engines["small"].seen) == seen
        health = await finished(call_get(app, "/health"))
        assert health.status == 200
        first.gone.set()
        await finished(first)
        assert (await finished(call(app, SHORT))).status == 200


def call_get(app, path: str) -> Call:
    result = Call()
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [(b"host", b"127.0.0.1")], "scheme": "http", "server": ("127.0.0.1", 8000)}

    async def receive():
        await result.gone.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            result.status = message["status"]
        elif message["type"] == "http.response.body":
            result.body += message.get("body", b"")

    result.task = asyncio.create_task(app(scope, receive, send))
    return result


class lifespan:
    """Runs the app's lifespan (its background tasks) around a test."""

    def __init__(self, app) -> None:
        self._app = app
        self._to_app: asyncio.Queue = asyncio.Queue()
        self._from_app: asyncio.Queue = asyncio.Queue()

    async def __aenter__(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
        self._task = asyncio.create_task(self._app(scope, self._to_app.get, self._from_app.put))
        await self._to_app.put({"type": "lifespan.startup"})
        assert (await self._from_app.get())["type"] == "lifespan.startup.complete"

    async def __aexit__(self, *exc) -> None:
        await self._to_app.put({"type": "lifespan.shutdown"})
        await self._from_app.get()
        await self._task
