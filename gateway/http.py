"""The HTTP edge: a Starlette app speaking the OpenAI protocol.

This is the only module that turns exceptions into HTTP responses.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable, Protocol, Sequence, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from engines.streams import first_chunk
from engines.types import GenerationChunk, GenerationResult
from gateway.errors import (
    EngineFailure,
    GatewayError,
    InvalidRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from gateway.auth import Authenticator
from gateway.grounding import Context, Grounder
from gateway.health import Readiness
from gateway.keys import KeyRecord
from gateway.loads import LoadPoller
from gateway.middleware import RequestIdMiddleware, request_id
from gateway.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    ModelList,
    TextChoice,
)
from gateway.serving import CompletionService, Plan
from gateway.catalog import ModelCatalog
from gateway.metrics import GatewayMetrics
from gateway.settings import LimitSettings
from gateway.streaming import event_stream, usage_info

logger = logging.getLogger(__name__)

W = TypeVar("W", bound=BaseModel)
Body = TypeVar("Body", ChatCompletionRequest, CompletionRequest)


class AnswerSink(Protocol):
    """Receives each finished answer (shadow mirroring, the feedback journal, answer
    flags) and its grounding context (None: ungrounded); must return at once and never raise."""

    def completed(self, plan: Plan, text: str, latency_s: float, context: Context | None = None) -> None: ...


class AnswerSinks:
    """Several sinks as one, each handed every answer in turn."""

    def __init__(self, sinks: Sequence[AnswerSink]) -> None:
        self._sinks = list(sinks)

    def completed(self, plan: Plan, text: str, latency_s: float, context: Context | None = None) -> None:
        for sink in self._sinks:
            sink.completed(plan, text, latency_s, context)


class PreRouting(Protocol):
    """Decides around routing whether a model answers at all (the support controls):
    the plan to serve, or a finished response (a hand-off) when no tier is to be called."""

    async def route(
        self, body: Any, request_id: str, plan_for: Callable[[Any, str], Awaitable[Plan]]
    ) -> Plan | Response: ...


class Background(Protocol):
    """A task that runs for the app's lifetime (pollers)."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class GatewayApp:
    """Route handlers over the injected service; `build()` makes the ASGI app."""

    def __init__(
        self,
        service: CompletionService,
        catalog: ModelCatalog,
        readiness: Readiness,
        metrics: GatewayMetrics,
        limits: LimitSettings,
        poller: LoadPoller,
        auth: Authenticator,
        echo_request_id: bool = True,
        extra_routes: Sequence[Route] = (),
        background: Sequence[Background] = (),
        answers: AnswerSink | None = None,
        grounder: Grounder | None = None,
        clock: Callable[[], float] = time.perf_counter,
        support: PreRouting | None = None,
    ) -> None:
        self._auth = auth
        self._support = support
        self._answers = answers
        self._grounder = grounder
        self._clock = clock
        self._extra_routes = list(extra_routes)
        self._background = [poller, *background]
        self._poller = poller
        self._echo_request_id = echo_request_id
        self._service = service
        self._catalog = catalog
        self._readiness = readiness
        self._metrics = metrics
        self.limits = limits  # replaced live (user_config.limits)

    def build(self) -> Starlette:
        routes = [
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/v1/completions", self.completions, methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/health", self.health, methods=["GET"]),
            Route("/ready", self.ready, methods=["GET"]),
            Route("/metrics", self.prometheus, methods=["GET"]),
            *self._extra_routes,
        ]
        handlers = {
            GatewayError: _gateway_error,
            HTTPException: _http_error,
            Exception: _unexpected_error,
        }
        # The request-id middleware wraps everything, error responses included.
        middleware = [Middleware(RequestIdMiddleware, echo=self._echo_request_id)]
        return Starlette(
            routes=routes, middleware=middleware, exception_handlers=handlers, lifespan=self._lifespan
        )

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        # Live tier loads for queue-aware routing; the adapter directory's refresh.
        for task in self._background:
            task.start()
        yield
        for task in self._background:
            await task.stop()

    # ---- OpenAI endpoints ------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        return await self._complete(request, ChatCompletionRequest, self._service.plan_chat)

    async def completions(self, request: Request) -> Response:
        return await self._complete(request, CompletionRequest, self._service.plan_completion)

    async def _complete(
        self, request: Request, model: type[Body], plan_for: Callable[[Body, str], Awaitable[Plan]]
    ) -> Response:
        """Both endpoints: authenticate, parse, check limits, admit, plan, answer.

        The order is the contract: a bad key is a 401 before the body is read, and a
        rejected body costs the key nothing (admission counts against its rate limit)."""
        key = await self._auth.key(request)
        body = await self._parse(request, model)
        check_limits(body, self.limits)
        await self._auth.admit(key)
        rid = request_id(request)
        plan = await self._support.route(body, rid, plan_for) if self._support else await plan_for(body, rid)
        if isinstance(plan, Response):
            return plan  # the hand-off: no tier is called
        return await self._respond(plan, stream=body.stream, key=key, grounding=body.grounding)

    async def models(self, request: Request) -> Response:
        await self._auth.key(request)
        return JSONResponse(ModelList(data=self._catalog.cards()).model_dump(mode="json"))

    async def _respond(
        self, plan: Plan, stream: bool, key: KeyRecord | None = None, grounding: bool | None = None
    ) -> Response:
        # Headers are built from the plan that served: a fallback changes the tier.
        started = self._clock()
        grounder = self._grounder if self._grounder and self._grounder.applies(plan, grounding) else None
        if grounding and self._grounder is None:
            raise InvalidRequest(
                "grounding was requested but this gateway serves no knowledge base.",
                param="grounding", code="grounding_unavailable",
            )
        if not stream:
            if grounder is not None:
                plan, result, context = await grounder.run(plan, self._service)
            else:
                (plan, result), context = await self._service.run(plan), None
            await self._auth.charge(key, result.usage.total_tokens)
            if self._answers is not None:
                self._answers.completed(plan, result.text, self._clock() - started, context)
            return JSONResponse(completion_body(plan, result), headers=route_headers(plan, context))
        # Failures before the first chunk (retries and fallback included) get a real status.
        if grounder is not None:
            (plan, chunks, first), context = await grounder.open_stream(plan, self._service)
        else:
            (plan, chunks), context = await self._service.open_stream(plan), None
            first = await first_chunk(chunks)
        return StreamingResponse(
            event_stream(plan, first, self._charged(plan, started, first, chunks, key, context)),
            media_type="text/event-stream",
            headers={**route_headers(plan, context), **SSE_HEADERS},
        )

    async def _charged(
        self, plan: Plan, started: float, first: GenerationChunk, chunks: AsyncIterator[GenerationChunk],
        key: KeyRecord | None, context: Context | None = None,
    ) -> AsyncIterator[GenerationChunk]:
        """Pass the stream through; charge the key's token budget when it ends, and hand
        a stream that ran to its end to the answer sink."""
        tokens = first.usage.total_tokens
        parts = [first.text]
        try:
            async for chunk in chunks:
                tokens = chunk.usage.total_tokens
                parts.append(chunk.text)
                yield chunk
            if self._answers is not None:
                self._answers.completed(plan, "".join(parts), self._clock() - started, context)
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]
            await self._auth.charge(key, tokens)

    async def _parse(self, request: Request, model: type[W]) -> W:
        payload = await read_json(request, self.limits.max_body_bytes)
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            raise validation_error(exc) from None

    # ---- operational endpoints -------------------------------------------------

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(self, request: Request) -> Response:
        report = await self._readiness.check()
        return JSONResponse(report.model_dump(mode="json"), status_code=200 if report.ready else 503)

    async def prometheus(self, request: Request) -> Response:
        return Response(generate_latest(self._metrics.registry), media_type=CONTENT_TYPE_LATEST)


# ---- request parsing ---------------------------------------------------------------


async def read_json(request: Request, limit: int) -> Any:
    """A JSON body, checked for content type, size, encoding and syntax. The OpenAI
    endpoints, feedback and (through its two halves) the admin API read bodies so."""
    return parse_json(await read_body(request, limit))


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, once its content type (JSON or none) and its size are checked."""
    content_type = request.headers.get("content-type", "application/json")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, got '{content_type}'."
        )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body is {declared} bytes; the limit is {limit} bytes.")
    return await _read_limited(request, limit)


def parse_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"Request body is not valid UTF-8 (byte {exc.start}).") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"Could not parse the JSON body: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    except RecursionError:  # a body of thousands of nested brackets
        raise InvalidRequest("The JSON body is nested too deeply.") from None


def check_limits(body: ChatCompletionRequest | CompletionRequest, limits: LimitSettings) -> None:
    """Limits the schema cannot know: they come from settings."""
    messages = getattr(body, "messages", None)
    if messages is not None and len(messages) > limits.max_messages:
        raise InvalidRequest(
            f"Too many messages: {len(messages)}; the limit is {limits.max_messages}.",
            param="messages", code="too_many_messages",
        )
    wanted = body.requested_max_tokens() if isinstance(body, ChatCompletionRequest) else body.max_tokens
    if wanted is not None and wanted > limits.max_tokens:
        param = "max_completion_tokens" if getattr(body, "max_completion_tokens", None) else "max_tokens"
        raise InvalidRequest(
            f"{param} is {wanted}; the limit is {limits.max_tokens}.", param=param, code="max_tokens_exceeded",
        )


async def _read_limited(request: Request, limit: int) -> bytes:
    # Chunked bodies carry no content-length: count while reading.
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes.")
        parts.append(part)
    return b"".join(parts)


def validation_error(exc: ValidationError) -> InvalidRequest:
    first = exc.errors(include_url=False)[0]
    if first.get("type") == "model_type":
        return InvalidRequest("The request body must be a JSON object.")
    param = ".".join(str(part) for part in first["loc"]) or None
    message = first["msg"]
    if param:
        message = f"Invalid value for '{param}': {message}"
    return InvalidRequest(message, param=param, code="invalid_value")


# ---- response building -------------------------------------------------------------


def route_headers(plan: Plan, context: Context | None = None) -> dict[str, str]:
    decision = plan.decision
    headers = {"x-gateway-tier": decision.tier, "x-gateway-route-reason": decision.reason}
    if decision.score is not None:
        # Full precision: a header must reproduce the comparison the policy made.
        headers["x-gateway-route-score"] = repr(decision.score)
    if decision.threshold is not None:
        headers["x-gateway-route-threshold"] = repr(decision.threshold)
    if decision.queue_depth is not None:
        headers["x-gateway-queue-depth"] = str(decision.queue_depth)
    if decision.expected_wait_s is not None:
        headers["x-gateway-expected-wait"] = f"{decision.expected_wait_s:.2f}"
    if decision.adapter_version:
        headers["x-gateway-adapter"] = decision.adapter_version
    if decision.router_version:
        headers["x-gateway-router-version"] = decision.router_version
    if plan.mode:
        headers["x-gateway-mode"] = plan.mode
    if context is not None:
        headers.update(context.headers())
    return headers


def completion_body(plan: Plan, result: GenerationResult) -> dict[str, Any]:
    usage = usage_info(result.usage)
    if plan.endpoint == "chat":
        body: BaseModel = ChatCompletion(
            id=f"chatcmpl-{plan.request_id}",
            model=plan.model_name,
            choices=[
                ChatChoice(
                    message=AssistantMessage(content=result.text), finish_reason=result.finish_reason
                )
            ],
            usage=usage,
        )
    else:
        body = Completion(
            id=f"cmpl-{plan.request_id}",
            model=plan.model_name,
            choices=[TextChoice(text=result.text, finish_reason=result.finish_reason)],
            usage=usage,
        )
    return body.model_dump(mode="json")


# ---- exception handlers ------------------------------------------------------------


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    if exc.status >= 500:
        logger.warning("request %s failed: %s", request_id(request), exc.message)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers())


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error_type = "invalid_request_error" if exc.status_code < 500 else "api_error"
    message = exc.detail if exc.status_code != 404 else f"Unknown path: {request.url.path}"
    body = {"error": {"message": message, "type": error_type, "param": None, "code": None}}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    logger.exception("request %s crashed", request_id(request))
    return JSONResponse(
        EngineFailure(f"Internal error ({type(exc).__name__}).", code="internal_error").body(),
        status_code=500,
    )
