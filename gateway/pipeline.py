"""What happens to a request: the one path of `POST /v1/chat/completions` and
`POST /v1/completions`, stage by stage, in order.

    authenticate  the key, before the body is read (a bad key is a 401 first)
    parse         the body into the wire model, the `model` resolved, the category
                  normalised (trimmed, case-folded), once: every later stage reads it
    validate      everything the request asks for against what this gateway can do:
                  the model, limits, grounding, the gate, a pinned adapter
    budget        the key's spend budget: hard spent, refused; soft spent, `auto` goes cheapest;
                  the tiers whose own budget is spent (`auto` routes below them)
    admit         the key's rate limits (a request refused above costs the key nothing)
    support       the answerability gate; a client category whose rollout mode is off
    route         the tier: pinned, or the router's decision for `auto` (below a spent tier)
    adapter       the small tier's LoRA adapter: pinned, the category's, the selector's
    cascade       whether `auto` runs as a cascade (the request's `cascade`, else the
                  category's config): then dispatch asks the router's tier first, with
                  logprobs, and escalates a weak answer one tier up, never into a tier
                  whose budget is spent (gateway/cascading.py)
    mode          the rollout mode of the category (the client's, else the adapter domain)
    ground        knowledge-base context (the grounder dispatches: its rerank may restart)
    dispatch      the tier's engine, with retries, breaker, timeouts and fallback
    sinks         after the answer: the token charge (rate limits, spend), then the answer
                  sinks (journal, shadow, flags); for a stream, when it ends (or is cut)

Every refusal happens before any work is spent on the request; a stage that ends it
early (a hand-off) answers through the same encoders as a model's answer. The request's
state is one `RequestState` the stages fill in.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import AsyncIterator, Callable, Iterator, Literal, Protocol, Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from adapters.choice import AdapterAsk, AdapterChooser
from engines.streams import first_chunk
from engines.types import GenerationChunk, GenerationRequest, GenerationResult, Tier, ToolCall, Usage
from cascade.trace import CascadeTrace
from gateway.auth import Authenticator
from gateway.cascading import CascadeStage, with_passed_over
from gateway.catalog import ModelCatalog
from gateway.dispatch import Call, Dispatcher
from gateway.errors import AdapterNotFoundError, InvalidRequest
from gateway.bodies import check_limits, parse_body, read_json, validated
from gateway.request_ids import issued_id
from wire.chat import ChatCompletionRequest
from gateway.responses import SSE_HEADERS, completion_body, event_stream, route_headers
from gateway.settings import LimitSettings
from gateway.spending import TIER_BUDGET, SpendStage
from gateway.openai_responses import ResponsesEncoder
from wire.responses import ResponsesRequest, responses_param, to_chat
from gateway.state import Body, Endpoint, RequestState
from retrieval.grounding import Grounder, GroundingAsk, retrieval_query
from engines.token_count import EstimatedCounter
from router.asks import request_asks
from router.decision import RoutingQuery
from router.live import LiveRouter
from support.controls import Handoff, SupportAsk, SupportControls
from support.errors import GateUnavailable
from text.category import normalise_category


class AnswerSink(Protocol):
    """Receives each finished answer, choice 0 (journal, shadow, flags): its text and the
    tools it called; returns at once, never raises."""

    def completed(self, state: RequestState, text: str, latency_s: float, calls: Sequence[ToolCall] = ()) -> None: ...


@dataclass(frozen=True)
class Stages:
    """What the stages run on; an optional capability is None when it is off."""

    auth: Authenticator
    catalog: ModelCatalog
    router: LiveRouter
    dispatcher: Dispatcher
    adapters: AdapterChooser | None = None
    grounder: Grounder | None = None
    support: SupportControls | None = None
    sinks: Sequence[AnswerSink] = ()
    spend: SpendStage | None = None
    cascade: CascadeStage | None = None


class Pipeline:
    def __init__(
        self, stages: Stages, limits: LimitSettings, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self._s = stages
        self.limits = limits  # replaced live (user_config.limits)
        self._clock = clock

    async def serve(self, request: Request, endpoint: Endpoint | Literal["responses"]) -> Response:
        key = await self._s.auth.key(request)
        state = await self._parse(request, endpoint, key)
        with in_terms_of(state):
            self._validate(state)
        if self._s.spend is not None:
            self._s.spend.check(state)
        await self._s.auth.admit(key)
        handoff = await self._support(state)
        if handoff is not None:
            return self._handoff(state, handoff)
        await self._route(state)
        await self._adapter(state)
        self._plan_cascade(state)
        handoff = self._mode(state)
        if handoff is not None:
            return self._handoff(state, handoff)
        if state.body.stream:
            return await self._stream(state)
        return await self._answer(state)

    # ---- parse and validate: before any work is spent --------------------------------

    async def _parse(self, request: Request, endpoint: Endpoint | Literal["responses"], key: object) -> RequestState:
        encoder = None
        if endpoint == "responses":  # the Responses API: a chat request in other shapes
            body, encoder = await parse_responses(request, self.limits.max_body_bytes)
            endpoint = "chat"
        else:
            body = await parse_body(request, endpoint, self.limits.max_body_bytes)
        rid = issued_id(request)  # the gateway's own, never the caller's x-request-id
        agentic = body.agentic()
        turns = body.turns() if isinstance(body, ChatCompletionRequest) else None
        query = RoutingQuery(
            text=_user_text(body), category=normalise_category(body.category()),
            asks=request_asks(agentic, turns),
        )
        sampling = body.sampling(
            body.requested_max_tokens() if isinstance(body, ChatCompletionRequest) else body.max_tokens
        )
        if isinstance(body, ChatCompletionRequest):
            generation = GenerationRequest(request_id=rid, messages=turns, sampling=sampling, agentic=agentic)
        else:
            generation = GenerationRequest(request_id=rid, prompt=body.text(), sampling=sampling, agentic=agentic)
        return RequestState(
            request_id=rid, endpoint=endpoint, body=body, key=key,  # type: ignore[arg-type]
            target=self._s.catalog.resolve(body.model), query=query, generation=generation,
            started=self._clock(), encoder=encoder,
        )

    def _validate(self, state: RequestState) -> None:
        body = state.body
        self._s.auth.check_switches(state.key, body)  # `gate: false` and the like: allowed keys only
        check_limits(body, self.limits)
        self._capable(state)
        if self._s.cascade is not None:
            self._s.cascade.planner.check(body.cascade, state.target.tier is not None, _plain(state))
        elif body.cascade:
            raise InvalidRequest("cascade was requested but this gateway runs no cascades.", param="cascade")
        if body.grounding and self._s.grounder is None:
            raise InvalidRequest(
                "grounding was requested but this gateway serves no knowledge base.",
                param="grounding", code="grounding_unavailable",
            )
        if self._s.support is not None:
            self._s.support.check(self._support_ask(state))
        elif body.gate:
            raise GateUnavailable()  # the same refusal the support controls make
        pin = state.target.adapter
        if pin is not None:
            if self._s.adapters is None:
                raise AdapterNotFoundError(
                    f"No adapter for domain '{pin.domain}': this gateway serves no adapters.", param="model"
                )
            state.pinned_adapter = self._s.adapters.resolve(pin.domain, pin.version)

    def _capable(self, state: RequestState) -> None:
        """What the request asks beyond text (tools, a schema, n, logprobs) against what the
        tiers can do: a pinned tier must honour all of it, `auto` needs one tier that does."""
        needs = state.generation.agentic.asks()
        if state.target.tier is not None:
            self._s.catalog.check_capable(state.target.tier, needs)
        else:
            self._s.catalog.check_any_capable(needs)
            state.context_tokens = context_tokens(state.generation)

    # ---- support controls, route, adapter, mode -----------------------------------------

    async def _support(self, state: RequestState) -> Handoff | None:
        if self._s.support is None:
            return None
        return await self._s.support.before_routing(self._support_ask(state))

    async def _route(self, state: RequestState) -> None:
        pinned = state.target.tier
        needs = state.generation.agentic.asks()
        capable = self._s.catalog.capable(needs)
        fitting = self._s.catalog.capable(needs, state.context_tokens)
        if pinned is None and len(fitting) == 1:
            # `auto` chooses only among the tiers that can serve the request: what it asks
            # (`capability`: nowhere else to go), how long it is (`context`: an estimate,
            # so a fallback may still try another tier, whose engine counts exactly).
            reason = "capability" if len(capable) == 1 else "context"
            decision = await self._s.router.decide(fitting[0], state.query, state.request_id)
            state.decision = decision.model_copy(update={"reason": reason})
            return
        if state.constraint is not None and (only := state.constraint.pick(fitting)) is not None:
            # `auto` constrained before routing (a key over its soft budget: the cheapest tier).
            decision = await self._s.router.decide(only, state.query, state.request_id)
            state.decision = decision.model_copy(update={"reason": state.constraint.reason})
            return
        query = state.query
        if pinned is None and len(fitting) < len(self._s.catalog.tiers()):
            query = query.model_copy(update={"tiers": tuple(fitting)})  # `auto` among those that can
        # Not a tier whose budget is spent (all spent: the cheapest that fits). After the
        # policy, not before: a move it caused is then seen, and named `tier_budget`.
        allowed = (([tier for tier in fitting if tier not in state.spent_tiers] or fitting[:1])
                   if pinned is None else fitting)
        decision = await self._s.router.decide(pinned, query, state.request_id)
        if pinned is None and allowed and decision.tier not in allowed:
            # A policy that knows nothing of `tiers` (the baseline rule, a category override),
            # or a tier over budget: the nearest allowed tier below it, else the cheapest.
            spent = decision.tier in fitting
            if spent and self._s.spend is not None:
                self._s.spend.moved()
            decision = decision.model_copy(update={
                "tier": _nearest(allowed, self._s.catalog.tiers(), decision.tier),
                "reason": TIER_BUDGET if spent else "capability",
            })
        state.decision = decision

    async def _adapter(self, state: RequestState) -> None:
        assert state.decision is not None
        if state.pinned_adapter is not None:
            state.adapter = state.pinned_adapter
        elif self._s.adapters is not None:
            state.adapter = await self._s.adapters.choose(AdapterAsk(
                pinned_tier=state.target.tier is not None, select=state.target.select_adapter,
                tier=state.decision.tier, category=state.query.category, text=state.query.text,
            ))
        if state.adapter is not None:
            if self._s.adapters is not None:
                self._s.adapters.served(state.adapter)
            state.decision = state.decision.model_copy(update={"adapter_version": state.adapter.version})
            state.generation = state.generation.model_copy(update={"adapter": state.adapter.spec()})
        self._s.router.record(state.decision)

    def _plan_cascade(self, state: RequestState) -> None:
        assert state.decision is not None
        stage = self._s.cascade
        if stage is not None and stage.planner.applies(
            state.body.cascade, state.target.tier is not None, _plain(state), state.category, state.decision.tier,
            state.spent_tiers,
        ):
            state.cascade = CascadeTrace()

    def _mode(self, state: RequestState) -> Handoff | None:
        if self._s.support is None:
            return None
        outcome = self._s.support.after_routing(state.category)
        if isinstance(outcome, Handoff):
            return outcome
        state.mode, state.rollout_category = outcome, state.category
        return None

    # ---- ground, dispatch, sinks ---------------------------------------------------------

    async def _answer(self, state: RequestState) -> Response:
        grounder = self._grounder_for(state)
        if grounder is None:
            result = await self._generate(state, state.generation)
        else:
            result, state.context = await grounder.run(self._grounding_ask(state), lambda g: self._generate(state, g), state.generation)
        await self._charge(state, result.usage)
        self._completed(state, result.text, result.tool_calls)
        return JSONResponse(_body(state, result), headers=route_headers(state))

    async def _stream(self, state: RequestState) -> Response:
        # Failures before the first chunk (retries and fallback included) get a real status.
        grounder = self._grounder_for(state)
        if grounder is None:
            chunks = await self._open(state, state.generation)
        else:
            chunks, state.context = await grounder.open_stream(self._grounding_ask(state), lambda g: self._open(state, g), state.generation)
        first = await first_chunk(chunks)
        return StreamingResponse(
            _events(state, first, self._sunk(state, first, chunks)),
            media_type="text/event-stream", headers={**route_headers(state), **SSE_HEADERS},
        )

    async def _generate(self, state: RequestState, generation: GenerationRequest) -> GenerationResult:
        stage = self._cascading(state)
        if stage is not None:
            return await stage.run(state, generation, lambda g: self._attempt(state, g))
        return await self._attempt(state, generation)

    async def _open(self, state: RequestState, generation: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        stage = self._cascading(state)
        if stage is None:
            return await self._open_on(state, generation)
        # The cheap answer is held until its verdict: kept, it is sent as one chunk; escalated,
        # the upper tier streams (its usage counting the passed-over answer's too).
        kept, upper = await stage.first(state, generation, lambda g: self._attempt(state, g))
        if kept is not None:
            return _held(kept)
        assert state.cascade is not None
        return _counting(await self._open_on(state, upper), state.cascade)

    def _cascading(self, state: RequestState) -> CascadeStage | None:
        """The cascade stage when this request cascades from the tier it is on now."""
        stage = self._s.cascade
        if stage is None or state.cascade is None or state.decision is None:
            return None
        return stage if stage.planner.above(state.decision.tier) is not None else None

    async def _attempt(self, state: RequestState, generation: GenerationRequest) -> GenerationResult:
        call, result = await self._s.dispatcher.generate(self._call(state, generation))
        self._served(state, call)
        return result

    async def _open_on(self, state: RequestState, generation: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        call, chunks = await self._s.dispatcher.open_stream(self._call(state, generation))
        self._served(state, call)
        return chunks

    async def _sunk(
        self, state: RequestState, first: GenerationChunk, chunks: AsyncIterator[GenerationChunk]
    ) -> AsyncIterator[GenerationChunk]:
        """The rest of the stream (after `first`), passed through; the sinks run when it
        ends (charged even when cut)."""
        usage, answer = first.usage, StreamedAnswer()
        answer.add(first)
        try:
            async for chunk in chunks:
                usage = chunk.usage
                answer.add(chunk)
                yield chunk
            self._completed(state, answer.text(), answer.calls())
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]
            await self._charge(state, usage)

    async def _charge(self, state: RequestState, usage: Usage) -> None:
        """The key's tokens against its rate limits, the answer's cost against its spend."""
        if self._s.spend is not None:
            self._s.spend.charge(state, usage)  # never raises
        await self._s.auth.charge(state.key, usage.total_tokens)

    def _completed(self, state: RequestState, text: str, calls: Sequence[ToolCall] = ()) -> None:
        latency_s = self._clock() - state.started
        for sink in self._s.sinks:
            sink.completed(state, text, latency_s, calls)

    # ---- helpers ----------------------------------------------------------------------

    def _call(self, state: RequestState, generation: GenerationRequest) -> Call:
        assert state.decision is not None
        return Call(state.endpoint, state.decision, generation)

    def _served(self, state: RequestState, call: Call) -> None:
        """What served: a fallback moved the tier and dropped the adapter."""
        state.decision, state.generation = call.decision, call.generation
        if call.decision.adapter_version is None:
            state.adapter = None
        state.model_name = self._s.catalog.served_name(call.tier, call.decision.adapter_version)

    def _grounder_for(self, state: RequestState) -> Grounder | None:
        grounder = self._s.grounder
        return grounder if grounder is not None and grounder.applies(self._grounding_ask(state)) else None

    def _grounding_ask(self, state: RequestState) -> GroundingAsk:
        return GroundingAsk(
            request_id=state.request_id, query=retrieval_query(state.generation.messages, state.query.text),
            domain=state.category, requested=state.body.grounding,
        )

    def _support_ask(self, state: RequestState) -> SupportAsk:
        # A message right after a tool result continues an agent's turn: never gated as chit-chat.
        after_tool = bool(state.generation.messages) and state.generation.messages[-1].role == "tool"
        gate = False if after_tool else state.body.gate
        return SupportAsk(user_text=state.query.text, category=state.query.category, gate=gate)

    def _handoff(self, state: RequestState, handoff: Handoff) -> Response:
        """No tier is called: the hand-off text as a complete answer, usage zero."""
        state.model_name = state.body.model
        result = GenerationResult(text=handoff.text, finish_reason="stop", usage=Usage())
        if not state.body.stream:
            return JSONResponse(_body(state, result), headers=handoff.headers)
        first = GenerationChunk(text=handoff.text, finish_reason="stop", usage=Usage())
        return StreamingResponse(
            _events(state, first, _nothing()), media_type="text/event-stream",
            headers={**handoff.headers, **SSE_HEADERS},
        )


class StreamedAnswer:
    """Choice 0 of a stream, put back together for the sinks: its text and its tool calls."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._calls: dict[int, ToolCall] = {}

    def add(self, chunk: GenerationChunk) -> None:
        if chunk.index != 0:
            return
        self._parts.append(chunk.text)
        for delta in chunk.tool_calls:
            call = self._calls.setdefault(delta.index, ToolCall(id=delta.id or "", name=delta.name or "", arguments=""))
            call.arguments += delta.arguments

    def text(self) -> str:
        return "".join(self._parts)

    def calls(self) -> list[ToolCall]:
        return [self._calls[i] for i in sorted(self._calls)]


def _body(state: RequestState, result: GenerationResult) -> dict:
    return state.encoder.body(state, result) if state.encoder else completion_body(state, result)


def _events(
    state: RequestState, first: GenerationChunk, rest: AsyncIterator[GenerationChunk]
) -> AsyncIterator[bytes]:
    encoder = state.encoder
    return encoder.events(state, first, rest) if encoder else event_stream(state, first, rest)


async def parse_responses(request: Request, limit: int) -> tuple[ChatCompletionRequest, ResponsesEncoder]:
    """A Responses request, as the chat request it amounts to; its refusals name its own fields."""
    responses = validated(ResponsesRequest, await read_json(request, limit))
    try:
        chat = validated(ChatCompletionRequest, to_chat(responses))
    except InvalidRequest as exc:
        exc.param = responses_param(exc.param)
        raise
    return chat, ResponsesEncoder(responses)


@contextmanager
def in_terms_of(state: RequestState) -> Iterator[None]:
    """Refusals of a Responses request name its fields (`max_output_tokens`, not `max_tokens`)."""
    try:
        yield
    except InvalidRequest as exc:
        if state.encoder is not None:
            exc.param = responses_param(exc.param)
        raise


async def _held(result: GenerationResult) -> AsyncIterator[GenerationChunk]:
    """A finished answer as a stream of one chunk (a cascade's kept answer)."""
    yield GenerationChunk(
        text=result.text, finish_reason=result.finish_reason, usage=result.usage, logprobs=result.logprobs,
    )


async def _counting(chunks: AsyncIterator[GenerationChunk], trace: CascadeTrace) -> AsyncIterator[GenerationChunk]:
    """The upper tier's stream, its cumulative usage counting the passed-over answers."""
    try:
        async for chunk in chunks:
            yield chunk.model_copy(update={"usage": with_passed_over(trace, chunk.usage)})
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


def _plain(state: RequestState) -> bool:
    """One plain answer (logprobs allowed): what a cascade can judge and replace."""
    return state.generation.agentic.asks() <= {"logprobs"}


async def _nothing() -> AsyncIterator[GenerationChunk]:
    return
    yield  # an async generator with no items


def _user_text(body: Body) -> str:
    """What routing and the gate read: the user's own words."""
    if isinstance(body, ChatCompletionRequest):
        return "\n".join(m.text() for m in body.messages if m.role == "user")
    return body.text()


def context_tokens(generation: GenerationRequest) -> int:
    """The context a request takes on a tier: its prompt, estimated as a remote tier
    without a tokenizer counts it, and the answer's room (max_tokens)."""
    return EstimatedCounter().prompt(generation) + (generation.sampling.max_tokens or 0)


def _nearest(fitting: Sequence[Tier], order: Sequence[Tier], wanted: Tier) -> Tier:
    """The highest tier of `fitting` at or below `wanted` in `order` (cheapest first), else
    the cheapest of `fitting`."""
    below = order[: order.index(wanted) + 1] if wanted in order else ()
    return next((tier for tier in reversed(below) if tier in fitting), fitting[0])
