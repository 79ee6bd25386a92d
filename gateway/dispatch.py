"""Dispatch: one generation sent to a tier, kept alive when the tier misbehaves.

Every call to a tier goes through here, primaries and shadow requests alike: the
breaker, retries and timeouts of `TierGuard`, the tier-down check, the request metrics
(`Dispatch` below) and the router's own count of what it sent. Engine exceptions are
translated into gateway errors here, once.

What the breaker hears from here (engines/resilience.py judges): a non-streamed call
waits for the whole answer, a stream only for its first token; every streamed token
tells the guard the tier is alive; and a whole answer past its timeout is followed by a
one-token liveness probe of the tier (`Dispatcher._liveness`), so a long answer on a
live tier never counts as the tier's fault.
"""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import AsyncIterator, Awaitable, Callable, Iterator, Literal, Mapping, Protocol, TypeVar

from engines.errors import ContextLengthExceeded, EngineBusy, EngineError, EngineRequestError, EngineUnavailable
from engines.protocol import Engine
from engines.streams import first_chunk
from engines.types import ChatTurn, GenerationChunk, GenerationRequest, GenerationResult, SamplingSpec, Tier, Usage
from gateway.errors import (
    ContextLengthError,
    EngineFailure,
    GatewayError,
    ServiceUnavailable,
    error_for_status,
)
from gateway.metrics import GatewayMetrics
from engines.resilience import BreakerState, ResilienceConfig, TierGuard, Wait
from router.decision import RoutingDecision

# The `endpoint` label of the request metrics: a shadow request is counted apart.
Endpoint = Literal["chat", "completions", "shadow"]
R = TypeVar("R")
BREAKER_GAUGE = {BreakerState.closed: 0, BreakerState.half_open: 1, BreakerState.open: 2}
# A tier whose queue is full said when to come back only if Ray's back-pressure config
# did; clients are told this otherwise (a 503 without Retry-After invites a hot loop).
BUSY_RETRY_AFTER_S = 1.0


class TierCounts(Protocol):
    """The router's live view of the tiers: what this ingress sent, and which tier is down."""

    def dispatched(self, tier: Tier, delta: int) -> None: ...

    def tier_down(self, tier: Tier) -> bool: ...


@dataclass(frozen=True)
class Call:
    """One generation as dispatched: where it goes (and why), and what it asks."""

    endpoint: Endpoint
    decision: RoutingDecision
    generation: GenerationRequest

    @property
    def tier(self) -> Tier:
        return self.decision.tier

    @property
    def prompt_param(self) -> str:
        return "messages" if self.generation.messages is not None else "prompt"

    def may_fall_back(self) -> bool:
        """A pinned tier is what the client asked for; a shadow targets its tier; a request
        only one tier can honour (tools, a schema, ...) has nowhere else to go."""
        return self.decision.reason not in ("explicit", "capability") and self.endpoint != "shadow"


class Dispatcher:
    def __init__(
        self, engines: Mapping[Tier, Engine], counts: TierCounts, metrics: GatewayMetrics,
        resilience: ResilienceConfig | None = None, clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._guard = TierGuard(
            resilience or ResilienceConfig(), on_retry=lambda tier: metrics.retries.labels(tier).inc(),
            liveness=self._liveness,
        )
        self._engines = dict(engines)
        self._counts = counts
        self._metrics = metrics
        self._clock = clock

    def configure(self, config: ResilienceConfig) -> None:
        self._guard.configure(config)

    async def generate(self, call: Call) -> tuple[Call, GenerationResult]:
        """Generate; returns the call that served it (a fallback may have replaced it)."""
        dispatch = self._dispatch(call)
        with dispatch.ends_on_error():
            call, result = await self._first_available(
                call, lambda c: self._engines[c.tier].generate(c.generation), dispatch, "answer"
            )
        dispatch.end(200)
        self._count_tokens(call.tier, result.usage)
        return call, result

    async def shadow(self, tier: Tier, request: GenerationRequest) -> GenerationResult:
        """A shadow request (shadow.service's dispatch seam): the same guard and metrics,
        labelled `shadow`, and never a fallback."""
        decision = RoutingDecision(tier=tier, reason="shadow")
        _, result = await self.generate(Call("shadow", decision, request))
        return result

    async def open_stream(self, call: Call) -> tuple[Call, AsyncIterator[GenerationChunk]]:
        """Start a stream: retries and fallback apply until the first chunk, never after.

        The request is in flight until the returned stream ends or is closed. Its first
        item is ready at once: read it (first_chunk) before answering, which starts the
        stream (an async generator closed unstarted would run no cleanup)."""

        async def first(candidate: Call) -> tuple[AsyncIterator[GenerationChunk], GenerationChunk]:
            started = self._clock()
            raw = self._engines[candidate.tier].stream(candidate.generation)
            chunk = await first_chunk(raw)
            self._metrics.ttft.labels(candidate.tier).observe(self._clock() - started)
            return raw, chunk

        dispatch = self._dispatch(call)
        with dispatch.ends_on_error():
            try:
                call, (raw, chunk) = await self._first_available(call, first, dispatch, "first_token")
            except StopAsyncIteration:
                raise EngineFailure("the engine ended the stream without output") from None
        return call, self._continue(call, chunk, raw, dispatch)

    async def _first_available(
        self, call: Call, attempt: Callable[[Call], Awaitable[R]], dispatch: Dispatch, wait: Wait
    ) -> tuple[Call, R]:
        """`attempt` on the call's tier, then (auto traffic) on the fallback tier if the
        first is unavailable. Any other engine error is final."""
        failure: tuple[Call, EngineUnavailable] | None = None
        for i, candidate in enumerate(self._candidates(call)):
            if i:
                self._metrics.fallbacks.labels(call.tier, candidate.tier).inc()
            dispatch.to(candidate.tier)
            try:
                return candidate, await self._guarded(candidate.tier, lambda: attempt(candidate), wait)
            except EngineUnavailable as exc:
                failure = (candidate, exc)
            except EngineError as exc:
                raise engine_error_to_gateway(exc, candidate) from exc
        assert failure is not None
        raise engine_error_to_gateway(failure[1], failure[0]) from failure[1]

    async def _continue(
        self, call: Call, first: GenerationChunk, raw: AsyncIterator[GenerationChunk], dispatch: Dispatch
    ) -> AsyncIterator[GenerationChunk]:
        usage = first.usage
        try:
            with dispatch.ends_on_error():  # closed before its end: the client went away (499)
                try:
                    yield first
                    async for chunk in raw:
                        self._guard.alive(call.tier)  # tokens flowing: the tier is not silent
                        usage = chunk.usage
                        yield chunk
                except EngineError as exc:
                    raise engine_error_to_gateway(exc, call) from exc
            dispatch.end(200)
        finally:
            await raw.aclose()  # type: ignore[attr-defined]
            self._count_tokens(call.tier, usage)

    def _candidates(self, call: Call) -> Iterator[Call]:
        """The call, then (auto traffic only) the fallback tier's version of it, made only
        when the first was unavailable (copying the request costs every `auto` request)."""
        yield call
        fallback = self._guard.fallback_for(call.tier)
        if fallback is None or not call.may_fall_back():
            return
        reason = f"fallback:{call.tier}_unavailable"
        decision = call.decision.model_copy(update={"tier": fallback, "adapter_version": None, "reason": reason})
        yield replace(call, decision=decision, generation=call.generation.model_copy(update={"adapter": None}))

    async def _guarded(self, tier: Tier, attempt: Callable[[], Awaitable[R]], wait: Wait) -> R:
        async def checked() -> R:
            # A tier with no live replica (killed, restarting) fails fast here instead of
            # queueing in Ray until a replacement has loaded its model.
            if self._counts.tier_down(tier):
                raise EngineUnavailable(f"no live replica of the {tier} tier")
            return await attempt()

        try:
            return await self._guard.call(tier, checked, wait)
        finally:
            state = self._guard.breaker(tier).state
            self._metrics.breaker_state.labels(tier).set(BREAKER_GAUGE[state])

    async def _liveness(self, tier: Tier) -> None:
        """One token from the tier, for the guard's verdict on a timed-out answer. Not a
        request of anyone's: no metrics, no tier-down check, never retried."""
        probe = GenerationRequest(
            request_id=f"liveness-{uuid.uuid4().hex[:12]}", messages=[ChatTurn(role="user", content="ping")],
            sampling=SamplingSpec(max_tokens=1),
        )
        stream = self._engines[tier].stream(probe)
        try:
            await anext(stream)
        except StopAsyncIteration:
            pass  # it answered, with nothing: alive
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    def _dispatch(self, call: Call) -> Dispatch:
        return Dispatch(call.endpoint, self._metrics, self._counts, self._clock)

    def _count_tokens(self, tier: Tier, usage: Usage) -> None:
        self._metrics.tokens.labels(tier, "prompt").inc(usage.prompt_tokens)
        self._metrics.tokens.labels(tier, "completion").inc(usage.completion_tokens)


class Dispatch:
    """One request, from its dispatch to a tier until it ends: what the request metrics see.

    In flight (the gauge, and the router's own count of what it sent) on the tier trying
    it now; a fallback moves it to the other tier. Counted once in `gateway_requests_total`
    and the latency, when it ends, under the tier that served it or failed it last, and
    timed from the first dispatch: retries, the failed tier's attempt and a stream's wait
    for its first token included. Status: 200 served, a gateway error's own status (400
    the engine refused the request, 503 unavailable, 500 failed), 499 the client went away.
    """

    def __init__(
        self, endpoint: Endpoint, metrics: GatewayMetrics, counts: TierCounts, clock: Callable[[], float]
    ) -> None:
        self._endpoint = endpoint
        self._metrics = metrics
        self._counts = counts
        self._clock = clock
        self._started = clock()
        self._tier: Tier | None = None
        self._ended = False

    def to(self, tier: Tier) -> None:
        if tier == self._tier or self._ended:
            return
        self._leave()
        self._tier = tier
        self._metrics.in_flight.labels(tier).inc()
        self._counts.dispatched(tier, +1)

    def end(self, status: int) -> None:
        if self._ended or self._tier is None:
            return
        self._ended = True
        self._leave()
        self._metrics.requests.labels(self._endpoint, self._tier, str(status)).inc()
        self._metrics.latency.labels(self._endpoint, self._tier).observe(self._clock() - self._started)

    @contextmanager
    def ends_on_error(self) -> Iterator[None]:
        try:
            yield
        except BaseException as exc:
            self.end(status_of(exc))
            raise

    def _leave(self) -> None:
        if self._tier is not None:
            self._counts.dispatched(self._tier, -1)
            self._metrics.in_flight.labels(self._tier).dec()


def status_of(exc: BaseException) -> int:
    """The status a request that ended with `exc` is counted under (engine errors are
    gateway errors by then)."""
    if isinstance(exc, GatewayError):
        return exc.status
    if isinstance(exc, Exception):
        return 500
    return 499  # cancelled, or a stream closed before its end: the client went away


def engine_error_to_gateway(exc: EngineError, call: Call) -> GatewayError:
    tier = call.tier
    if isinstance(exc, ContextLengthExceeded):
        return ContextLengthError(exc.message, param=call.prompt_param)
    if isinstance(exc, EngineRequestError):
        # The engine's 400, or a remote tier's upstream's own 4xx with its code.
        return error_for_status(exc.status)(exc.message, param=exc.data.get("param"), code=exc.data.get("code"))
    if isinstance(exc, EngineBusy):
        return ServiceUnavailable(
            f"The {tier} tier is at capacity: {exc.message}. Retry later.",
            retry_after_s=exc.retry_after_s or BUSY_RETRY_AFTER_S, code="tier_busy",
        )
    if isinstance(exc, EngineUnavailable):
        return ServiceUnavailable(f"The {tier} tier is unavailable: {exc.message}", retry_after_s=exc.retry_after_s)
    return EngineFailure(f"The {tier} tier failed: {exc.message}")
