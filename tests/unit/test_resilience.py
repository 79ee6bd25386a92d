import pytest

from engines.errors import EngineRequestError, EngineUnavailable
from engines.resilience import BreakerConfig, BreakerOpen, BreakerState, CircuitBreaker, ResilienceConfig, TierGuard


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_breaker_opens_then_half_opens_one_probe():
    clock = Clock()
    breaker = CircuitBreaker(BreakerConfig(failure_threshold=2, reset_after_s=5), clock)
    breaker.failure()
    assert breaker.state is BreakerState.closed
    breaker.failure()
    assert breaker.state is BreakerState.open and not breaker.allow()
    clock.now = 5
    assert breaker.allow() and not breaker.allow()  # one probe only
    breaker.failure()  # the probe failed: open again
    assert breaker.state is BreakerState.open
    clock.now = 10
    assert breaker.allow()
    breaker.success()
    assert breaker.state is BreakerState.closed and breaker.allow()


async def test_guard_retries_transient_failures():
    guard = TierGuard(ResilienceConfig(retries=2, retry_backoff_s=0))
    calls = []

    async def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise EngineUnavailable("gone")
        return "ok"

    assert await guard.call("large", flaky) == "ok" and len(calls) == 3


async def test_guard_does_not_retry_request_errors():
    guard = TierGuard(ResilienceConfig(retries=2, retry_backoff_s=0))
    calls = []

    async def bad():
        calls.append(1)
        raise EngineRequestError("bad adapter")

    with pytest.raises(EngineRequestError):
        await guard.call("small", bad)
    assert len(calls) == 1


async def test_open_breaker_fails_fast_without_calling():
    config = ResilienceConfig(retries=0, breaker=BreakerConfig(failure_threshold=1, reset_after_s=60))
    guard = TierGuard(config)

    async def down():
        raise EngineUnavailable("gone")

    with pytest.raises(EngineUnavailable):
        await guard.call("large", down)
    called = []

    async def never():
        called.append(1)

    with pytest.raises(BreakerOpen):
        await guard.call("large", never)
    assert not called


async def test_slow_tier_times_out_without_retry():
    import asyncio

    from engines.resilience import TierTimeout

    guard = TierGuard(ResilienceConfig(retries=2, retry_backoff_s=0, timeout_s={"large": 0.05}))
    calls = []

    async def slow():
        calls.append(1)
        await asyncio.sleep(1)

    with pytest.raises(TierTimeout, match="within 0.05s"):
        await guard.call("large", slow)
    assert len(calls) == 1
