"""Keeping requests alive when a tier misbehaves: retries, a breaker per tier, fallback.

- Retries (tenacity) only for `EngineUnavailable` (replica gone, tier restarting) and
  only before the first token: a started answer is never replayed. An upstream's
  Retry-After is honoured: the wait is at least what it asks, and a pause longer than
  `MAX_RETRY_AFTER_S` is not waited out inside a request (fallback, or 503 with it).
- A circuit breaker per tier opens after consecutive failures, fails fast while open,
  and lets one probe through (half-open) after `reset_after_s`. Every end of the probe
  settles it, cancellation included, so a half-open tier never waits on a lost probe.
- Fallback: an auto-routed request whose tier is unavailable (breaker open, retries
  exhausted) goes to the configured other tier, recorded as the route reason. A pinned
  tier (`model="large"`) is what the client asked for: it fails cleanly instead.
"""

from __future__ import annotations

import asyncio
import time
from enum import Enum
from typing import Awaitable, Callable, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential

from engines.types import Tier
from engines.errors import EngineUnavailable
from engines.errors import EngineRequestError

T = TypeVar("T")
MAX_RETRY_AFTER_S = 2.0  # also the longest exponential backoff


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
    ) -> None:
        self._on_retry = on_retry
        self._clock = clock
        self.breakers: dict[Tier, CircuitBreaker] = {}
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

    async def call(self, tier: Tier, attempt: Callable[[], Awaitable[T]]) -> T:
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
                    raise BreakerOpen(f"the {tier} tier's circuit breaker is open")
                limit = self.config.timeout_s.get(tier)
                try:
                    async with asyncio.timeout(limit):
                        result = await attempt()
                except TimeoutError:
                    breaker.failure()
                    raise TierTimeout(f"the {tier} tier did not answer within {limit:g}s") from None
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
                return result
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover


class BreakerOpen(EngineUnavailable):
    """Fail fast: the tier failed repeatedly and has not recovered yet."""


class TierTimeout(EngineUnavailable):
    """The tier was too slow. Not retried (that would double the load on a slow tier);
    auto traffic may still move to the fallback tier."""


def _transient(exc: BaseException) -> bool:
    if not isinstance(exc, EngineUnavailable) or isinstance(exc, (BreakerOpen, TierTimeout)):
        return False
    return (exc.retry_after_s or 0.0) <= MAX_RETRY_AFTER_S


def _honouring_retry_after(backoff: Callable[[RetryCallState], float]) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        asked = failure.retry_after_s if isinstance(failure, EngineUnavailable) else None
        return max(backoff(state), asked or 0.0)

    return wait
