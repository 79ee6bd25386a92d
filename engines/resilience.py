"""Keeping requests alive when a tier misbehaves: retries, a breaker per tier, fallback.

- Retries (tenacity) only for `EngineUnavailable` (replica gone, tier restarting) and
  only before the first token: a started answer is never replayed. An upstream's
  Retry-After is honoured: the wait is at least what it asks, and a pause longer than
  `MAX_RETRY_AFTER_S` is not waited out inside a request (fallback, or 503 with it).
  A full queue (`EngineBusy`) and a timeout are not retried: both would add load to a
  tier that has too much.
- A circuit breaker per tier opens after consecutive *tier faults*, fails fast while
  open, and lets one probe through (half-open) after `reset_after_s`. Every end of the
  probe settles it, cancellation included, so a half-open tier never waits on a lost probe.
- What is a tier fault, so that no client can open the breaker for everyone: the engine
  said it is down (`EngineUnavailable`: no replica, dead engine, connection refused, an
  upstream 5xx), or the tier stayed silent: a stream got no first token within
  `timeout_s`, or a whole answer ran out of `timeout_s` and the tier then gave no token to
  a one-token liveness probe either. A long answer on a live tier (tokens flowing: the
  client asked for 4096 of them), a cancellation (the client went away), a refusal (4xx)
  and a full queue (`EngineBusy`) are not.
- Fallback: an auto-routed request whose tier is unavailable (breaker open, retries
  exhausted, queue full, too slow) goes to the configured other tier, recorded as the
  route reason. A pinned tier (`model="large"`) is what the client asked for: it fails
  cleanly instead.
"""

from __future__ import annotations

import asyncio
import time
from enum import Enum
from typing import Awaitable, Callable, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential

from engines.types import Tier
from engines.errors import EngineBusy, EngineRequestError, EngineTimedOut, EngineUnavailable

T = TypeVar("T")
MAX_RETRY_AFTER_S = 2.0  # also the longest exponential backoff
# What a call waits for: a stream's first token (silence past the timeout is a tier
# fault), or a whole answer (its length is the client's: the timeout alone proves nothing).
Wait = Literal["first_token", "answer"]
# Returns once the tier produced a token for a tiny request of the guard's own; raises
# (or hangs past `liveness_timeout_s`) when it can't. Gateway.dispatch supplies it.
Liveness = Callable[[Tier], Awaitable[None]]


class BreakerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    failure_threshold: int = Field(5, ge=1, description="Consecutive failures that open the breaker")
    reset_after_s: float = Field(10.0, gt=0, description="Open this long, then one probe is let through")


class ResilienceConfig(BaseModel):
    """Live config section (`user_config.resilience`)."""

    model_config = ConfigDict(extra="forbid")
    retries: int = Field(2, ge=0, le=5, description="Retries of a transient failure before the first token")
    retry_backoff_s: float = Field(0.2, ge=0, description="First backoff; doubles per retry")
    fallback: dict[Tier, Tier] = Field(
        default_factory=lambda: {"large": "small"},
        description="Where auto traffic goes when its tier is unavailable (small -> large only if listed)",
    )
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    timeout_s: dict[Tier, float] = Field(
        default_factory=lambda: {"small": 120.0, "large": 300.0},
        description="Per tier: a whole answer, or a stream's first token, must come within this",
    )
    liveness_timeout_s: float = Field(
        10.0, gt=0, description="A whole answer past timeout_s counts against the tier's breaker only "
        "if the tier then gives no token to a one-token probe within this (a long answer on a live "
        "tier is the client's, not a fault)",
    )


class BreakerState(str, Enum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


class CircuitBreaker:
    def __init__(self, config: BreakerConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.closed
        if self._clock() - self._opened_at >= self.config.reset_after_s:
            return BreakerState.half_open
        return BreakerState.open

    def allow(self) -> bool:
        """May a request go to this tier now? Half-open lets exactly one probe through."""
        state = self.state
        if state is BreakerState.closed:
            return True
        if state is BreakerState.half_open and not self._probing:
            self._probing = True
            return True
        return False

    def reopens_in(self) -> float:
        """Seconds until a probe may go through (what a refused caller is told to wait)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.config.reset_after_s - self._clock())

    def success(self) -> None:
        self._failures, self._opened_at, self._probing = 0, None, False

    def failure(self) -> None:
        self._failures += 1
        if self._probing or self._failures >= self.config.failure_threshold:
            self._opened_at = self._clock()
        self._probing = False

    def release(self) -> None:
        """A call ended without saying whether the tier is healthy: count nothing, but free
        the probe slot so the next request can probe (else half-open would refuse forever)."""
        self._probing = False


class TierGuard:
    """Runs a call against one tier with the breaker and the retry policy."""

    def __init__(
        self,
        config: ResilienceConfig,
        on_retry: Callable[[Tier], None] = lambda tier: None,
        clock: Callable[[], float] = time.monotonic,
        liveness: Liveness | None = None,
    ) -> None:
        self._on_retry = on_retry
        self._clock = clock
        self._liveness = liveness
        self.breakers: dict[Tier, CircuitBreaker] = {}
        self._alive_at: dict[Tier, float] = {}  # the last time each tier produced something
        self._probes: dict[Tier, asyncio.Task[bool]] = {}  # one liveness probe per tier at a time
        self.configure(config)

    def configure(self, config: ResilienceConfig) -> None:
        self.config = config
        for breaker in self.breakers.values():
            breaker.config = config.breaker

    def breaker(self, tier: Tier) -> CircuitBreaker:
        if tier not in self.breakers:
            self.breakers[tier] = CircuitBreaker(self.config.breaker, self._clock)
        return self.breakers[tier]

    def fallback_for(self, tier: Tier) -> Tier | None:
        return self.config.fallback.get(tier)

    def alive(self, tier: Tier) -> None:
        """The tier just produced output (an answer, a streamed token): it is not silent."""
        self._alive_at[tier] = self._clock()

    async def call(self, tier: Tier, attempt: Callable[[], Awaitable[T]], wait: Wait = "answer") -> T:
        """`attempt` until it succeeds, a non-transient error, or retries run out."""
        breaker = self.breaker(tier)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.config.retries + 1),
            wait=_honouring_retry_after(wait_exponential(multiplier=self.config.retry_backoff_s, max=MAX_RETRY_AFTER_S)),
            retry=retry_if_exception(_transient),
            before_sleep=lambda _: self._on_retry(tier),
            reraise=True,
        )
        async for step in retrying:
            with step:
                if not breaker.allow():
                    wait_s = max(1.0, breaker.reopens_in())
                    raise BreakerOpen(f"the {tier} tier's circuit breaker is open", retry_after_s=wait_s)
                return await self._attempt(tier, breaker, attempt, wait)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _attempt(
        self, tier: Tier, breaker: CircuitBreaker, attempt: Callable[[], Awaitable[T]], wait: Wait
    ) -> T:
        """One try, and the breaker's verdict on the tier from how it ended."""
        limit = self.config.timeout_s.get(tier)
        started = self._clock()
        try:
            try:
                async with asyncio.timeout(limit):
                    result = await attempt()
            except TimeoutError:
                raise TierTimeout(f"the {tier} tier did not answer within {limit:g}s") from None
        except (TierTimeout, EngineTimedOut):
            await self._judge_timeout(tier, breaker, started, wait)
            raise
        except EngineBusy:
            breaker.release()  # a full queue: loaded, not down
            raise
        except EngineUnavailable:
            breaker.failure()
            raise
        except EngineRequestError:
            # The engine read the request and refused it (a 4xx): the tier is alive,
            # which is all a probe asks, so this closes the breaker like a success.
            breaker.success()
            raise
        except BaseException:
            # Cancellation (client gone, a losing attempt dropped) or an unexpected
            # error: no verdict on the tier, but the probe must not stay in flight.
            breaker.release()
            raise
        breaker.success()
        self.alive(tier)
        return result

    async def _judge_timeout(self, tier: Tier, breaker: CircuitBreaker, started: float, wait: Wait) -> None:
        """A fault only if the tier was silent: a stream that got no first token; a whole
        answer that ran out while the tier produced nothing, for it or anyone."""
        try:
            silent = wait == "first_token" or await self._silent_since(tier, started)
        except BaseException:
            breaker.release()  # cancelled while the probe ran: no verdict
            raise
        if silent:
            breaker.failure()
        else:
            breaker.release()

    async def _silent_since(self, tier: Tier, started: float) -> bool:
        if self._alive_at.get(tier, float("-inf")) >= started:
            return False  # another request got tokens meanwhile: this one was just long
        if self._liveness is None:
            return True
        probe = self._probes.get(tier)
        if probe is None or probe.done():
            # Shared by every request that times out while it runs, and shielded: one
            # probe per tier at a time, finished even if the waiter is cancelled.
            probe = asyncio.get_running_loop().create_task(self._silent_now(tier))
            self._probes[tier] = probe
        return await asyncio.shield(probe)

    async def _silent_now(self, tier: Tier) -> bool:
        assert self._liveness is not None
        try:
            async with asyncio.timeout(self.config.liveness_timeout_s):
                await self._liveness(tier)
        except EngineRequestError:
            pass  # it read the probe and refused it: alive
        except EngineBusy:
            return False  # loaded, not silent: no verdict either way
        except Exception:
            return True  # no token in time, or the tier failed the probe too
        self.alive(tier)
        return False


class BreakerOpen(EngineUnavailable):
    """Fail fast: the tier failed repeatedly and has not recovered yet."""


class TierTimeout(EngineUnavailable):
    """The tier was too slow. Not retried (that would double the load on a slow tier);
    auto traffic may still move to the fallback tier. A breaker failure only when the tier
    was silent (`TierGuard._judge_timeout`)."""


# Unavailable, yet not worth another try inside the request: the breaker said so, or the
# tier is slow or full (another try would add load where there is too much).
_NOT_TRANSIENT = (BreakerOpen, TierTimeout, EngineTimedOut, EngineBusy)


def _transient(exc: BaseException) -> bool:
    if not isinstance(exc, EngineUnavailable) or isinstance(exc, _NOT_TRANSIENT):
        return False
    return (exc.retry_after_s or 0.0) <= MAX_RETRY_AFTER_S


def _honouring_retry_after(backoff: Callable[[RetryCallState], float]) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        asked = failure.retry_after_s if isinstance(failure, EngineUnavailable) else None
        return max(backoff(state), asked or 0.0)

    return wait
