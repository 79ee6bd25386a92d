"""Ray Serve's back-pressure (a deployment's `max_queued_requests` reached) and its own
cancellations, as the gateway sees them through `HandleEngine`: a full queue is
`EngineBusy` (503 tier_busy with Retry-After, no verdict on the tier), our own cancel is
a cancellation (never a tier failure, never retried)."""

from __future__ import annotations

import asyncio

import pytest
from ray.exceptions import RayTaskError
from ray.serve.exceptions import BackPressureError, RequestCancelledError

from deployments.handle_client import HandleEngine
from engines.errors import EngineBusy, EngineUnavailable
from engines.resilience import BreakerState, ResilienceConfig, TierGuard
from engines.types import GenerationRequest
from gateway.dispatch import Call, engine_error_to_gateway
from router.decision import RoutingDecision
from tests.support.ray_handles import FailingHandle

REQUEST = GenerationRequest(request_id="r", prompt="hi")


async def test_a_full_queue_is_engine_busy_with_rays_retry_after():
    engine = HandleEngine(FailingHandle(BackPressureError(512, 512, retry_after_s=2.0)))
    with pytest.raises(EngineBusy) as busy:
        await engine.generate(REQUEST)
    assert busy.value.retry_after_s == 2.0
    with pytest.raises(EngineBusy):
        async for _ in engine.stream(REQUEST):
            pass


async def test_a_full_queue_reported_by_a_replica_is_engine_busy_too():
    wrapped = RayTaskError("generate", "traceback", BackPressureError(1, 1))
    with pytest.raises(EngineBusy) as busy:
        await HandleEngine(FailingHandle(wrapped)).generate(REQUEST)
    assert busy.value.retry_after_s is None


async def test_our_own_cancel_is_a_cancellation_not_an_unavailable_tier():
    engine = HandleEngine(FailingHandle(RequestCancelledError("r")))
    with pytest.raises(asyncio.CancelledError):
        await engine.generate(REQUEST)
    with pytest.raises(asyncio.CancelledError):
        async for _ in engine.stream(REQUEST):
            pass


async def test_busy_is_not_retried_and_never_opens_the_breaker():
    guard = TierGuard(ResilienceConfig(retries=2, retry_backoff_s=0, breaker={"failure_threshold": 1}))
    calls = []

    async def full() -> None:
        calls.append(1)
        raise EngineBusy("the tier's queue is full")

    for _ in range(5):
        with pytest.raises(EngineBusy):
            await guard.call("large", full)
    assert len(calls) == 5 and guard.breaker("large").state is BreakerState.closed


def test_busy_maps_to_an_openai_503_with_retry_after():
    call = Call("chat", RoutingDecision(tier="large", reason="explicit"), REQUEST)
    error = engine_error_to_gateway(EngineBusy("the tier's queue is full"), call)
    assert error.status == 503 and error.code == "tier_busy" and error.headers() == {"retry-after": "1"}
    asked = engine_error_to_gateway(EngineBusy("full", retry_after_s=2.5), call)
    assert asked.headers() == {"retry-after": "3"}
    # still an EngineUnavailable: auto traffic falls back to the other tier
    assert isinstance(EngineBusy("full"), EngineUnavailable)
