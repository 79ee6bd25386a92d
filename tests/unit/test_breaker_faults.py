"""Only a tier's own faults open its breaker: no client can open it for everyone.

A long answer that runs out of `timeout_s` while the tier produces tokens, a client that
goes away, a refusal, a full queue: none counts. A tier that can't be reached, or stays
silent (no first token; no token for a liveness probe after an answer timed out), does.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

import pytest

from engines.errors import EngineTimedOut
from engines.resilience import BreakerConfig, BreakerState, ResilienceConfig
from engines.types import ChatTurn, GenerationChunk, GenerationRequest, GenerationResult, SamplingSpec, Tier
from gateway.dispatch import Call, Dispatcher
from gateway.errors import ServiceUnavailable
from gateway.metrics import GatewayMetrics
from router.decision import RoutingDecision
from tests.support.fake_engine import FakeEngine

THRESHOLD = 5


class Counts:
    def dispatched(self, tier: Tier, delta: int) -> None:
        pass

    def tier_down(self, tier: Tier) -> bool:
        return False


class SilentEngine(FakeEngine):
    """Accepts every request and never produces a token (a hung engine)."""

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        self.calls += 1
        self.seen.append(request)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        self.calls += 1
        self.seen.append(request)
        await asyncio.Event().wait()
        yield GenerationChunk(text="never", usage={})  # pragma: no cover


class SlowUpstreamEngine(FakeEngine):
    """A remote tier whose long answers outlast the HTTP client's read timeout, while the
    upstream keeps streaming tokens to anyone who streams."""

    answers = 0

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        self.answers += 1
        raise EngineTimedOut("the upstream sent nothing within timeout_s (ReadTimeout)")


def dispatcher(engine: FakeEngine, timeout_s: float = 0.1, **resilience) -> Dispatcher:
    config = ResilienceConfig(
        retries=2, retry_backoff_s=0, fallback={}, timeout_s={"large": timeout_s, "small": timeout_s},
        breaker=BreakerConfig(failure_threshold=THRESHOLD, reset_after_s=60), **resilience,
    )
    return Dispatcher({"large": engine, "small": FakeEngine("tiny")}, Counts(), GatewayMetrics(), config)


def call(max_tokens: int = 500, text: str = "please write a long essay") -> Call:
    generation = GenerationRequest(
        request_id="r", messages=[ChatTurn(role="user", content=text)], sampling=SamplingSpec(max_tokens=max_tokens),
    )
    return Call("chat", RoutingDecision(tier="large", reason="explicit"), generation)


def state(d: Dispatcher) -> BreakerState:
    return d._guard.breaker("large").state


async def five_timeouts(d: Dispatcher) -> None:
    for _ in range(THRESHOLD):
        with pytest.raises(ServiceUnavailable):
            await d.generate(call())


async def test_answers_timing_out_while_tokens_flow_leave_the_breaker_closed():
    # A client asks 500 tokens of a tier that makes one per 10 ms: 5 s of work, 0.1 s allowed.
    engine = FakeEngine("big", max_model_len=1024, token_delay_s=0.01)
    d = dispatcher(engine)
    await five_timeouts(d)
    assert state(d) is BreakerState.closed
    # and the tier still serves everyone else
    _, result = await d.generate(call(max_tokens=2, text="hi"))
    assert result.usage.completion_tokens == 2


async def test_connection_failures_open_the_breaker():
    engine = FakeEngine("big", max_model_len=1024)
    engine.unavailable_for = -1  # every call fails as a replica that can't be reached
    d = dispatcher(engine)
    for _ in range(THRESHOLD):
        with pytest.raises(ServiceUnavailable, match="unavailable"):
            await d.generate(call())
    assert state(d) is BreakerState.open
    calls = engine.calls
    with pytest.raises(ServiceUnavailable, match="breaker is open") as refused:
        await d.generate(call())
    assert engine.calls == calls  # failed fast
    assert int(refused.value.headers()["retry-after"]) >= 1


async def test_a_silent_tier_still_opens_the_breaker_on_answer_timeouts():
    engine = SilentEngine("big")
    d = dispatcher(engine, liveness_timeout_s=0.05)
    await five_timeouts(d)
    assert state(d) is BreakerState.open
    assert any(r.request_id.startswith("liveness-") for r in engine.seen)  # it was asked, and said nothing


async def test_streams_without_a_first_token_open_the_breaker():
    d = dispatcher(SilentEngine("big"))
    for _ in range(THRESHOLD):
        with pytest.raises(ServiceUnavailable, match="did not answer within"):
            await d.open_stream(call())
    assert state(d) is BreakerState.open


async def test_a_stream_flowing_meanwhile_spares_the_probe():
    engine = FakeEngine("big", max_model_len=1024, token_delay_s=0.01)
    d = dispatcher(engine)
    _, stream = await d.open_stream(call(max_tokens=100))

    async def read() -> None:
        async for _ in stream:
            pass

    reader = asyncio.create_task(read())
    await five_timeouts(d)
    await reader
    assert state(d) is BreakerState.closed
    assert not any(r.request_id.startswith("liveness-") for r in engine.seen)


async def test_clients_going_away_never_count():
    engine = FakeEngine("big", max_model_len=1024, token_delay_s=0.01)
    d = dispatcher(engine, timeout_s=30)
    for _ in range(THRESHOLD * 2):
        task = asyncio.create_task(d.generate(call()))
        await asyncio.sleep(0.03)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert state(d) is BreakerState.closed and d._guard.breaker("large")._failures == 0


async def test_an_upstream_read_timeout_on_a_live_tier_is_neither_a_fault_nor_retried():
    engine = SlowUpstreamEngine("big", max_model_len=1024)
    d = dispatcher(engine)
    await five_timeouts(d)
    assert state(d) is BreakerState.closed
    assert engine.answers == THRESHOLD  # one try each: a slow answer is not replayed
