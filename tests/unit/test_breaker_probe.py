"""A half-open breaker's probe is settled by every way it can end, not only success or failure."""

import asyncio

import pytest

from engines.errors import ContextLengthExceeded, EngineRequestError, EngineUnavailable
from engines.resilience import BreakerConfig, BreakerState, ResilienceConfig, TierGuard

RESET_S = 10.0


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


async def half_open_guard(clock: Clock) -> TierGuard:
    """A guard whose large-tier breaker has opened and waited out `reset_after_s`."""
    config = ResilienceConfig(retries=0, breaker=BreakerConfig(failure_threshold=1, reset_after_s=RESET_S))
    guard = TierGuard(config, clock=clock)

    async def down():
        raise EngineUnavailable("gone")

    with pytest.raises(EngineUnavailable):
        await guard.call("large", down)
    clock.now += RESET_S
    assert guard.breaker("large").state is BreakerState.half_open
    return guard


async def ok():
    return "ok"


async def test_cancelled_probe_frees_the_half_open_slot():
    clock = Clock()
    guard = await half_open_guard(clock)
    started = asyncio.Event()

    async def hang():
        started.set()
        await asyncio.Event().wait()  # the client goes away before the tier answers

    probe = asyncio.create_task(guard.call("large", hang))
    await started.wait()
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    # Cancellation says nothing about the tier: still half-open (not re-opened), and the
    # next request becomes the probe instead of being refused forever.
    assert guard.breaker("large").state is BreakerState.half_open
    assert await guard.call("large", ok) == "ok"
    assert guard.breaker("large").state is BreakerState.closed


@pytest.mark.parametrize("error", [EngineRequestError("bad adapter"), ContextLengthExceeded("too long")])
async def test_request_error_on_probe_closes_the_breaker(error):
    clock = Clock()
    guard = await half_open_guard(clock)

    async def refused():
        raise error

    with pytest.raises(type(error)):
        await guard.call("large", refused)
    # The engine answered (with a 4xx): the tier is alive.
    assert guard.breaker("large").state is BreakerState.closed
    assert await guard.call("large", ok) == "ok"


async def test_unexpected_error_on_probe_frees_the_slot():
    clock = Clock()
    guard = await half_open_guard(clock)

    async def broken():
        raise RuntimeError("a bug, not a tier failure")

    with pytest.raises(RuntimeError):
        await guard.call("large", broken)
    assert guard.breaker("large").state is BreakerState.half_open
    assert await guard.call("large", ok) == "ok"


async def test_failed_probe_still_reopens():
    clock = Clock()
    guard = await half_open_guard(clock)

    async def down():
        raise EngineUnavailable("still gone")

    with pytest.raises(EngineUnavailable):
        await guard.call("large", down)
    assert guard.breaker("large").state is BreakerState.open
