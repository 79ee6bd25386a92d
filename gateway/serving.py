"""Orchestration of one completion: resolve the model, route, call the tier's engine.

Engine exceptions are translated into gateway errors here, once; metrics are recorded
here, once, for both endpoints and both response modes (see `Dispatch`).
"""

from __future__ import annotations

import asyncio
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import AsyncIterator, Awaitable, Callable, Iterator, Literal, Mapping, TypeVar

from engines.errors import ContextLengthExceeded, EngineError, EngineRequestError, EngineUnavailable
from engines.protocol import Engine
from engines.streams import first_chunk
from engines.types import GenerationChunk, GenerationRequest, GenerationResult, Tier, Usage
from gateway.adapters import AdapterDirectory, LiveAdapter
from gateway.catalog import ModelCatalog, ModelTarget
from gateway.errors import (
    AdapterNotFoundError,
    ContextLengthError,
    EngineFailure,
    GatewayError,
    ServiceUnavailable,
    error_for_status,
)
from gateway.metrics import GatewayMetrics
from gateway.protocol import ChatCompletionRequest, CompletionRequest
from gateway.resilience import BreakerState, ResilienceConfig, TierGuard
from gateway.routing import Router
from router.decision import RoutingDecision, RoutingQuery

Endpoint = Literal["chat", "completions"]
R = TypeVar("R")
BREAKER_GAUGE = {BreakerState.closed: 0, BreakerState.half_open: 1, BreakerState.open: 2}


@dataclass(frozen=True)
class Plan:
    """Everything decided before the engine is called."""

    request_id: str
    endpoint: Endpoint
    decision: RoutingDecision
    model_name: str
    generation: GenerationRequest
    include_usage: bool
    query: RoutingQuery  # what the router saw: the user's text and category
    domain: str | None = None  # the adapter's domain, when one serves it
    mode: str | None = None  # the category's rollout mode (draft, auto), when the support controls are on
    rollout_category: str | None = None  # the category the rollout keyed it by

    @property
    def prompt_param(self) -> str:
        return "messages" if self.endpoint == "chat" else "prompt"


class CompletionService:
    def __init__(
        self,
        engines: Mapping[Tier, Engine],
        catalog: ModelCatalog,
        router: Router,
        metrics: GatewayMetrics,
        adapters: AdapterDirectory | None = None,
        auto_select_adapters: bool = True,
        resilience: ResilienceConfig | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._guard = TierGuard(
            resilience or ResilienceConfig(), on_retry=lambda tier: metrics.retries.labels(tier).inc()
        )
        self._adapters = adapters
        self._auto_select = auto_select_adapters
        self._engines = dict(engines)
        self._catalog = catalog
        self._router = router
        self._metrics = metrics
        self._clock = clock

    # ---- planning ------------------------------------------------------------

    async def plan_chat(self, request: ChatCompletionRequest, request_id: str) -> Plan:
        turns = request.turns()
        query = RoutingQuery(
            text="\n".join(t.content for t in turns if t.role == "user"),
            category=request.category(),
        )
        generation = GenerationRequest(
            request_id=request_id,
            messages=turns,
            sampling=request.sampling(request.requested_max_tokens()),
        )
        return await self._plan("chat", request.model, query, generation, request.include_usage())

    async def plan_completion(self, request: CompletionRequest, request_id: str) -> Plan:
        query = RoutingQuery(text=request.text(), category=request.category())
        generation = GenerationRequest(
            request_id=request_id, prompt=request.text(), sampling=request.sampling(request.max_tokens)
        )
        return await self._plan("completions", request.model, query, generation, request.include_usage())

    async def _plan(
        self,
        endpoint: Endpoint,
        model: str,
        query: RoutingQuery,
        generation: GenerationRequest,
        include_usage: bool,
    ) -> Plan:
        target = self._catalog.resolve(model)
        decision = await self._router.decide(target, query, generation.request_id)
        adapter = await self._adapter_for(target, decision, query)
        if adapter is not None:
            decision = decision.model_copy(update={"adapter_version": adapter.version})
            self._metrics.adapter_requests.labels(adapter.domain, adapter.version).inc()
        self._record(decision)
        return Plan(
            request_id=generation.request_id,
            endpoint=endpoint,
            decision=decision,
            model_name=self._catalog.served_name(decision.tier, decision.adapter_version),
            generation=generation.model_copy(update={"adapter": adapter.spec() if adapter else None}),
            include_usage=include_usage,
            query=query,
            domain=adapter.domain if adapter else None,
        )

    async def _adapter_for(
        self, target: ModelTarget, decision: RoutingDecision, query: RoutingQuery
    ) -> LiveAdapter | None:
        """A pinned adapter, or for auto traffic routed small, the query's domain adapter."""
        if target.adapter is not None:
            if self._adapters is None:
                raise AdapterNotFoundError(
                    f"No adapter for domain '{target.adapter.domain}': this gateway serves no adapters.",
                    param="model",
                )
            return self._adapters.resolve(target.adapter.domain, target.adapter.version)
        pinned_tier = target.tier is not None and not target.select_adapter
        if pinned_tier or decision.tier != "small" or self._adapters is None:
            return None
        if not self._auto_select and not target.select_adapter:
            return None
        # A client-supplied category that names a live domain beats the embedding guess.
        hinted = self._adapters.active().get((query.category or "").lower())
        if hinted is not None:
            self._metrics.adapter_selection.labels("category").inc()
            return hinted
        # The selector's encoder takes ~15 ms on CPU: off the event loop, which streams.
        selection = await asyncio.to_thread(self._adapters.select, query.text)
        self._metrics.adapter_similarity.observe(selection.similarity)
        self._metrics.adapter_selection.labels("embedding" if selection.adapter else "base").inc()
        return selection.adapter

    def _record(self, decision: RoutingDecision) -> None:
        self._metrics.decisions.labels(decision.tier, decision.reason).inc()
        if decision.router_version is not None:
            self._metrics.router_decisions.labels(decision.router_version, decision.tier).inc()
        if decision.score is not None and decision.reason.startswith("learned:"):
            self._metrics.route_score.observe(decision.score)
        if decision.queue_depth is not None:
            self._metrics.queue_depth.set(decision.queue_depth)

    # ---- execution -----------------------------------------------------------

    async def run(self, plan: Plan) -> tuple[Plan, GenerationResult]:
        """Generate; returns the plan that served it (a fallback may have replaced it)."""
        dispatch = self._dispatch(plan)
        with dispatch.ends_on_error():
            plan, result = await self._first_available(
                plan, lambda c: self._engine(c).generate(c.generation), dispatch
            )
        dispatch.end(200)
        self._count_tokens(plan.decision.tier, result.usage)
        return plan, result

    async def open_stream(self, plan: Plan) -> tuple[Plan, AsyncIterator[GenerationChunk]]:
        """Start a stream: retries and fallback apply until the first chunk, never after.

        The request is in flight until the returned stream ends or is closed. Its first
        item is ready at once: read it (first_chunk) before answering, which starts the
        stream (an async generator closed unstarted would run no cleanup)."""

        async def first(candidate: Plan) -> tuple[AsyncIterator[GenerationChunk], GenerationChunk]:
            started = self._clock()
            raw = self._engine(candidate).stream(candidate.generation)
            chunk = await first_chunk(raw)
            self._metrics.ttft.labels(candidate.decision.tier).observe(self._clock() - started)
            return raw, chunk

        dispatch = self._dispatch(plan)
        with dispatch.ends_on_error():
            try:
                plan, (raw, chunk) = await self._first_available(plan, first, dispatch)
            except StopAsyncIteration:
                raise EngineFailure("the engine ended the stream without output") from None
        return plan, self._continue(plan, chunk, raw, dispatch)

    async def _first_available(
        self, plan: Plan, call: Callable[[Plan], Awaitable[R]], dispatch: Dispatch
    ) -> tuple[Plan, R]:
        """`call` on the plan's tier, then (auto traffic) on the fallback tier if the first
        is unavailable. Any other engine error is final."""
        failure: tuple[Plan, EngineUnavailable] | None = None
        for i, candidate in enumerate(self._candidates(plan)):
            if i:
                self._metrics.fallbacks.labels(plan.decision.tier, candidate.decision.tier).inc()
            dispatch.to(candidate.decision.tier)
            try:
                return candidate, await self._guarded(candidate, lambda: call(candidate))
            except EngineUnavailable as exc:
                failure = (candidate, exc)
            except EngineError as exc:
                raise engine_error_to_gateway(exc, candidate) from exc
        assert failure is not None
        raise engine_error_to_gateway(failure[1], failure[0]) from failure[1]

    async def _continue(
        self,
        plan: Plan,
        first: GenerationChunk,
        raw: AsyncIterator[GenerationChunk],
        dispatch: Dispatch,
    ) -> AsyncIterator[GenerationChunk]:
        usage = first.usage
        try:
            with dispatch.ends_on_error():  # closed before its end: the client went away (499)
                try:
                    yield first
                    async for chunk in raw:
                        usage = chunk.usage
                        yield chunk
                except EngineError as exc:
                    raise engine_error_to_gateway(exc, plan) from exc
            dispatch.end(200)
        finally:
            await raw.aclose()  # type: ignore[attr-defined]
            self._count_tokens(plan.decision.tier, usage)

    def configure(self, config: ResilienceConfig) -> None:
        self._guard.configure(config)

    def _candidates(self, plan: Plan) -> list[Plan]:
        """The plan, then (auto traffic only) the fallback tier's version of it."""
        candidates = [plan]
        fallback = self._guard.fallback_for(plan.decision.tier)
        if fallback is not None and plan.decision.reason != "explicit":
            candidates.append(self._moved(plan, fallback))
        return candidates

    def _moved(self, plan: Plan, tier: Tier) -> Plan:
        reason = f"fallback:{plan.decision.tier}_unavailable"
        decision = plan.decision.model_copy(update={"tier": tier, "adapter_version": None, "reason": reason})
        return replace(
            plan, decision=decision, model_name=self._catalog.served_name(tier),
            generation=plan.generation.model_copy(update={"adapter": None}), domain=None,
        )

    async def _guarded(self, plan: Plan, attempt: Callable[[], Awaitable[R]]) -> R:
        tier = plan.decision.tier

        async def checked() -> R:
            # A tier with no live replica (killed, restarting) fails fast here instead of
            # queueing in Ray until a replacement has loaded its model.
            if self._router.tier_down(tier):
                raise EngineUnavailable(f"no live replica of the {tier} tier")
            return await attempt()

        try:
            return await self._guard.call(tier, checked)
        finally:
            state = self._guard.breaker(tier).state
            self._metrics.breaker_state.labels(tier).set(BREAKER_GAUGE[state])

    def _engine(self, plan: Plan) -> Engine:
        return self._engines[plan.decision.tier]

    def _dispatch(self, plan: Plan) -> Dispatch:
        return Dispatch(plan.endpoint, self._metrics, self._router, self._clock)

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
        self, endpoint: Endpoint, metrics: GatewayMetrics, router: Router, clock: Callable[[], float]
    ) -> None:
        self._endpoint = endpoint
        self._metrics = metrics
        self._router = router
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
        self._router.dispatched(tier, +1)

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
            self._router.dispatched(self._tier, -1)
            self._metrics.in_flight.labels(self._tier).dec()


def status_of(exc: BaseException) -> int:
    """The status a request that ended with `exc` is counted under (engine errors are
    gateway errors by then)."""
    if isinstance(exc, GatewayError):
        return exc.status
    if isinstance(exc, Exception):
        return 500
    return 499  # cancelled, or a stream closed before its end: the client went away


def engine_error_to_gateway(exc: EngineError, plan: Plan) -> GatewayError:
    tier = plan.decision.tier
    if isinstance(exc, ContextLengthExceeded):
        return ContextLengthError(exc.message, param=plan.prompt_param)
    if isinstance(exc, EngineRequestError):
        # The engine's 400, or a remote tier's upstream's own 4xx with its code.
        return error_for_status(exc.status)(exc.message, param=exc.data.get("param"), code=exc.data.get("code"))
    if isinstance(exc, EngineUnavailable):
        return ServiceUnavailable(f"The {tier} tier is unavailable: {exc.message}", retry_after_s=exc.retry_after_s)
    return EngineFailure(f"The {tier} tier failed: {exc.message}")
