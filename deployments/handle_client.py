"""Adapts a Ray Serve handle to the `engines.protocol.Engine` seam.

Ray's own failures (dead replica, no replica) become `EngineUnavailable` here, so
the gateway never sees a Ray type.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

from ray import exceptions as ray_errors
from ray.serve import exceptions as serve_errors
from ray.serve.handle import DeploymentHandle

from engines.errors import EngineBusy, EngineError, EngineUnavailable
from engines.types import AdapterSpec, EngineLoad, GenerationChunk, GenerationRequest, GenerationResult

_UNAVAILABLE = (
    ray_errors.RayActorError,
    ray_errors.ActorUnavailableError,
    ray_errors.WorkerCrashedError,
    ray_errors.NodeDiedError,
    # Serve's own refusals (no replica, failed deployment) are not RayErrors, yet just as transient.
    serve_errors.ReplicaUnavailableError,
    serve_errors.DeploymentUnavailableError,
)


def _translate(exc: BaseException) -> BaseException:
    if isinstance(exc, serve_errors.RequestCancelledError):
        # Our own cancel (the client went away, a deadline passed): a cancellation, never
        # a tier failure (as a RayError it would count against the breaker and be retried).
        return asyncio.CancelledError()
    pressure = _back_pressure(exc)
    if pressure is not None:
        # The tier's queue (max_queued_requests) is full: alive, loaded. A 503 with
        # Retry-After, and no verdict on the tier's health.
        retry_after = getattr(pressure, "retry_after_s", None)
        data = {"retry_after_s": retry_after} if retry_after is not None else {}
        return EngineBusy("the tier's queue is full", **data)
    if isinstance(exc, ray_errors.RayTaskError):
        cause = exc.as_instanceof_cause() if not isinstance(exc, EngineError) else exc
        if isinstance(cause, EngineError):
            return cause
        return EngineError(f"{type(exc.cause).__name__}: {exc.cause}")
    if isinstance(exc, _UNAVAILABLE):
        return EngineUnavailable(f"replica unavailable ({type(exc).__name__})")
    if isinstance(exc, ray_errors.RayError):
        return EngineUnavailable(f"{type(exc).__name__}: {exc}")
    return exc  # not Ray's: the caller re-raises it as it is


def _back_pressure(exc: BaseException) -> BaseException | None:
    """Serve's BackPressureError, raised by the caller's router or wrapped by a replica."""
    if isinstance(exc, serve_errors.BackPressureError):
        return exc
    cause = getattr(exc, "cause", None) if isinstance(exc, ray_errors.RayTaskError) else None
    return cause if isinstance(cause, serve_errors.BackPressureError) else None


class HandleEngine:
    def __init__(self, handle: DeploymentHandle) -> None:
        self._handle = handle
        self._streaming = handle.options(stream=True)

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        try:
            return await self._handle.generate.remote(request)
        except Exception as exc:
            raise _translate(exc) from exc

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        chunks = self._streaming.stream.remote(request)
        finished = False
        try:
            async for chunk in chunks:
                yield chunk
            finished = True
        except Exception as exc:
            raise _translate(exc) from exc
        finally:
            # A consumer that stops early (client gone) must stop the engine too. A stream
            # that ended needs no cancel: skipping it saves a call into Ray per request.
            if not finished:
                chunks.cancel()

    async def load(self) -> EngineLoad:
        try:
            return await self._handle.load.remote()
        except Exception as exc:
            raise _translate(exc) from exc

    async def probe_adapter(self, adapter: AdapterSpec) -> None:
        try:
            await self._handle.probe_adapter.remote(adapter)
        except Exception as exc:
            raise _translate(exc) from exc
