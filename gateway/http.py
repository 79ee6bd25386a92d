"""The HTTP edge: a Starlette app speaking the OpenAI protocol.

The completion endpoints run the request pipeline (gateway/pipeline.py); this module
holds the routes, the app's lifetime, and the one place exceptions become HTTP responses.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import AsyncIterator, Protocol, Sequence

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.auth import Authenticator
from gateway.catalog import ModelCatalog
from gateway.concurrency import InFlightMiddleware
from gateway.errors import CAPABILITY_ERRORS, EngineFailure, GatewayError, translated
from gateway.health import Readiness
from gateway.metrics import GatewayMetrics
from gateway.middleware import (
    DetailHeadersMiddleware,
    RayControlHeadersMiddleware,
    RequestIdMiddleware,
    TrustedHostMiddleware,
    request_id,
)
from gateway.observers import Observers
from gateway.pipeline import Pipeline
from wire.chat import ModelList

logger = logging.getLogger(__name__)


class Background(Protocol):
    """A task that runs for the app's lifetime (pollers, writers)."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class Operations:
    """What the non-completion endpoints read."""

    auth: Authenticator
    catalog: ModelCatalog
    readiness: Readiness
    metrics: GatewayMetrics
    observers: Observers  # who may read /metrics and /ready's detail


class GatewayApp:
    """Route handlers over the pipeline; `build()` makes the ASGI app."""

    def __init__(
        self, pipeline: Pipeline, ops: Operations, routes: Sequence[BaseRoute] = (),
        background: Sequence[Background] = (), echo_request_id: bool = True,
    ) -> None:
        self.pipeline = pipeline
        self._ops = ops
        self._routes = list(routes)
        self._background = list(background)
        self._echo_request_id = echo_request_id

    def build(self) -> Starlette:
        routes = [
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/v1/completions", self.completions, methods=["POST"]),
            Route("/v1/responses", self.responses, methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/health", self.health, methods=["GET"]),
            Route("/ready", self.ready, methods=["GET"]),
            Route("/metrics", self.prometheus, methods=["GET"]),
            *self._routes,
        ]
        # Outermost first. The request id wraps everything, refusals included; the host check
        # refuses a rebinding page, and Ray's control headers a request Ray would no longer
        # cancel, before anything runs; the in-flight cap refuses before any work, and its
        # lease releases every slot when the call ends (a stream's end, a client gone); the
        # detail headers are dropped from whatever the routes answer.
        middleware = [
            Middleware(RequestIdMiddleware, echo=self._echo_request_id),
            Middleware(TrustedHostMiddleware, allowed=self._ops.auth.access.allowed_hosts),
            Middleware(RayControlHeadersMiddleware),
            Middleware(InFlightMiddleware, cap=lambda: self.pipeline.limits.max_in_flight),
            Middleware(DetailHeadersMiddleware),
        ]
        return Starlette(
            routes=routes, middleware=middleware, exception_handlers=exception_handlers(),
            lifespan=self._lifespan,
        )

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        for task in self._background:
            task.start()
        yield
        for task in self._background:
            await task.stop()

    async def chat(self, request: Request) -> Response:
        return await self.pipeline.serve(request, "chat")

    async def completions(self, request: Request) -> Response:
        return await self.pipeline.serve(request, "completions")

    async def responses(self, request: Request) -> Response:
        return await self.pipeline.serve(request, "responses")

    async def models(self, request: Request) -> Response:
        await self._ops.auth.key(request)
        return JSONResponse(ModelList(data=self._ops.catalog.cards()).model_dump(mode="json"))

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(self, request: Request) -> Response:
        # Load balancers get the status only; tiers' load and probe errors are the insides.
        report = await self._ops.readiness.check()
        status = 200 if report.ready else 503
        if not await self._ops.observers.allowed(request):
            return JSONResponse(report.summary(), status_code=status)
        return JSONResponse({**report.summary(), **report.model_dump(mode="json")}, status_code=status)

    async def prometheus(self, request: Request) -> Response:
        await self._ops.observers.require(request)
        return Response(generate_latest(self._ops.metrics.registry), media_type=CONTENT_TYPE_LATEST)


# ---- exception handlers: the one place an exception becomes a response ----------------


def exception_handlers() -> dict:
    handlers = {GatewayError: _gateway_error, HTTPException: _http_error, Exception: _unexpected_error}
    # A capability's refusal never reaches the catch-all (which would log it as a crash).
    handlers.update({error: _capability_error for error in CAPABILITY_ERRORS})
    return handlers


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


async def _capability_error(request: Request, exc: Exception) -> Response:
    gateway_error = translated(exc)
    assert gateway_error is not None
    return await _gateway_error(request, gateway_error)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    logger.exception("request %s crashed", request_id(request))
    return JSONResponse(
        EngineFailure(f"Internal error ({type(exc).__name__}).", code="internal_error").body(),
        status_code=500,
    )
