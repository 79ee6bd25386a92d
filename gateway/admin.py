"""Admin API for adapters: load, activate, roll back, unload, set a canary candidate.

Every change goes: validate (registry) -> probe-load on a small-tier replica (vLLM
itself must accept the weights) -> commit to the registry -> wait until every live
small-tier replica reports the new generation. A failure at any step leaves the
previously active version serving. The response carries the swap time.

Authenticated with the admin key (`Authorization: Bearer ...`); without a configured
key the admin API is off.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Awaitable, Callable, Mapping, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.errors import (
    AdapterError,
    AdapterNotFound,
    EvaluationFailed,
    IncompatibleAdapter,
    InvalidAdapter,
    RollbackUnavailable,
)
from adapters.registry import RegistryState
from engines.errors import EngineError, EngineRequestError, EngineUnavailable
from engines.types import AdapterReport, AdapterSpec
from gateway.adapters import AdapterDirectory
from gateway.admin_auth import AdminGuard
from gateway.errors import (
    AdapterNotFoundError,
    Conflict,
    EngineFailure,
    GatewayError,
    InvalidRequest,
    ServiceUnavailable,
)
from gateway.http import parse_json, read_body, validation_error
from gateway.metrics import GatewayMetrics

B = TypeVar("B", bound=BaseModel)
# Admin bodies hold a path or a version: the limit only stops abuse, and stays fixed
# whatever the live limit for completion requests is.
MAX_BODY_BYTES = 1_000_000


class AdapterFleet(Protocol):
    """The small tier's replicas, as the admin API needs them."""

    async def probe(self, adapter: AdapterSpec) -> None:
        """Load the adapter on one replica; raises EngineError if the engine refuses it."""
        ...

    async def reports(self) -> Mapping[str, AdapterReport]:
        """Per live replica: the registry generation it applied and the adapters it holds."""
        ...


class LoadBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="PEFT adapter directory with its manifest.json")
    activate: bool = False
    force: bool = Field(False, description="Register even if its own evaluation failed")


class VersionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str | None = None


class ChangeResult(BaseModel):
    domain: str
    active: str | None
    candidate: str | None
    generation: int
    converged: bool
    replicas: int
    swap_seconds: float


def adapter_error_to_gateway(exc: AdapterError) -> GatewayError:
    """Adapter exceptions become OpenAI-shaped errors here, at the edge."""
    if isinstance(exc, AdapterNotFound):
        return AdapterNotFoundError(exc.message)
    if isinstance(exc, RollbackUnavailable):
        return Conflict(exc.message, code="rollback_unavailable")
    codes = {InvalidAdapter: "invalid_adapter", IncompatibleAdapter: "incompatible_adapter",
             EvaluationFailed: "evaluation_failed"}
    return InvalidRequest(exc.message, param="path", code=codes.get(type(exc), "invalid_adapter"))


def probe_error_to_gateway(exc: EngineError, adapter: str) -> GatewayError:
    """A failed probe-load: only an adapter the engine refused is the caller's fault (400);
    an engine that is dead or out of reach is 503, anything else the engine's failure (500)."""
    if isinstance(exc, EngineRequestError):
        return InvalidRequest(
            f"The small tier refused adapter '{adapter}': {exc.message}",
            param="path", code="invalid_adapter",
        )
    if isinstance(exc, EngineUnavailable):
        return ServiceUnavailable(f"The small tier could not be reached: {exc.message}")
    return EngineFailure(f"The small tier failed while loading adapter '{adapter}': {exc.message}")


class AdminApi:
    def __init__(
        self,
        directory: AdapterDirectory,
        fleet: AdapterFleet,
        metrics: GatewayMetrics,
        guard: AdminGuard,
        converge_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._directory = directory
        self._registry = directory.registry
        self._fleet = fleet
        self._metrics = metrics
        self._guard = guard
        self._timeout = converge_timeout_s
        self._clock = clock
        self._lock = asyncio.Lock()  # one change at a time per ingress replica

    def routes(self) -> list[Route]:
        return [
            Route("/admin/adapters", self.list, methods=["GET"]),
            Route("/admin/adapters", self.load, methods=["POST"]),
            Route("/admin/adapters/{domain}/activate", self.activate, methods=["POST"]),
            Route("/admin/adapters/{domain}/rollback", self.rollback, methods=["POST"]),
            Route("/admin/adapters/{domain}/candidate", self.candidate, methods=["POST"]),
            Route("/admin/adapters/{domain}", self.unload, methods=["DELETE"]),
        ]

    # ---- handlers ----------------------------------------------------------------

    async def list(self, request: Request) -> Response:
        await self._guard.authorize(request)
        state = await asyncio.to_thread(self._registry.state)
        versions = await asyncio.to_thread(self._registry.versions)
        reports = await self._fleet.reports()
        return JSONResponse({
            "generation": state.generation,
            "domains": {d: {"active": s.active, "candidate": s.candidate} for d, s in state.domains.items()},
            "versions": [m.model_dump(mode="json", exclude={"centroids"}) for m in versions],
            "replicas": {name: r.model_dump(mode="json") for name, r in reports.items()},
        })

    async def load(self, request: Request) -> Response:
        await self._guard.authorize(request)
        body = await admin_body(request, LoadBody)

        async def change() -> tuple[str, RegistryState]:
            manifest = await asyncio.to_thread(self._registry.validate, Path(body.path))
            await self._probe(AdapterSpec(name=manifest.version, path=body.path))
            manifest = await asyncio.to_thread(
                self._registry.register, Path(body.path), body.force, body.activate
            )
            return manifest.domain, await asyncio.to_thread(self._registry.state)

        return await self._change("load", change)

    async def activate(self, request: Request) -> Response:
        await self._guard.authorize(request)
        domain, version = request.path_params["domain"], await self._version(request, required=True)

        async def change() -> tuple[str, RegistryState]:
            await self._probe_stored(version)
            return domain, await asyncio.to_thread(self._registry.activate, domain, version)

        return await self._change("activate", change)

    async def rollback(self, request: Request) -> Response:
        await self._guard.authorize(request)
        domain, version = request.path_params["domain"], await self._version(request, required=False)

        async def change() -> tuple[str, RegistryState]:
            return domain, await asyncio.to_thread(self._registry.rollback, domain, version)

        return await self._change("rollback", change)

    async def candidate(self, request: Request) -> Response:
        await self._guard.authorize(request)
        domain, version = request.path_params["domain"], await self._version(request, required=False)

        async def change() -> tuple[str, RegistryState]:
            if version is not None:
                await self._probe_stored(version)
            return domain, await asyncio.to_thread(self._registry.set_candidate, domain, version)

        return await self._change("candidate", change)

    async def unload(self, request: Request) -> Response:
        await self._guard.authorize(request)
        domain = request.path_params["domain"]

        async def change() -> tuple[str, RegistryState]:
            return domain, await asyncio.to_thread(self._registry.unload, domain)

        return await self._change("unload", change)

    # ---- the change protocol -------------------------------------------------------

    async def _change(self, operation: str, change: Callable[[], Awaitable[tuple[str, RegistryState]]]) -> Response:
        started = self._clock()
        async with self._lock:
            try:
                domain, state = await change()
            except AdapterError as exc:
                self._metrics.adapter_operations.labels(operation, "rejected").inc()
                raise adapter_error_to_gateway(exc) from None
            except GatewayError:
                self._metrics.adapter_operations.labels(operation, "rejected").inc()
                raise
            await asyncio.to_thread(self._directory.refresh)
            converged, replicas = await self._converge(state.generation)
        elapsed = self._clock() - started
        self._metrics.adapter_operations.labels(operation, "applied" if converged else "pending").inc()
        self._metrics.adapter_swap_seconds.labels(operation).observe(elapsed)
        entry = state.domains.get(domain)
        result = ChangeResult(
            domain=domain, active=entry.active if entry else None, candidate=entry.candidate if entry else None,
            generation=state.generation, converged=converged, replicas=replicas, swap_seconds=elapsed,
        )
        return JSONResponse(result.model_dump(mode="json"), status_code=200 if converged else 202)

    async def _converge(self, generation: int) -> tuple[bool, int]:
        deadline = self._clock() + self._timeout
        while True:
            reports = await self._fleet.reports()
            if all(r.generation >= generation for r in reports.values()):
                return True, len(reports)
            if self._clock() > deadline:
                return False, len(reports)
            await asyncio.sleep(0.05)

    async def _probe_stored(self, version: str) -> None:
        ref = await asyncio.to_thread(self._registry.ref, version)
        await self._probe(AdapterSpec(name=version, path=ref.path))

    async def _probe(self, adapter: AdapterSpec) -> None:
        try:
            await self._fleet.probe(adapter)
        except EngineError as exc:
            raise probe_error_to_gateway(exc, adapter.name) from None

    # ---- request helpers -------------------------------------------------------------

    async def _version(self, request: Request, required: bool) -> str | None:
        body = await admin_body(request, VersionBody, allow_empty=not required)
        if required and not body.version:
            raise InvalidRequest("Missing 'version'.", param="version")
        return body.version


async def admin_body(request: Request, model: type[B], allow_empty: bool = False) -> B:
    # Checked as the OpenAI endpoints check theirs; no body at all is fine where every
    # field is optional (rollback, candidate).
    raw = await read_body(request, MAX_BODY_BYTES)
    if not raw.strip() and allow_empty:
        return model()
    try:
        return model.model_validate(parse_json(raw))
    except ValidationError as exc:
        raise validation_error(exc) from None
