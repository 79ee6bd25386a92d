"""Changing the small tier's adapters while it serves.

Every change goes: validate (registry) -> probe-load on one small-tier replica (vLLM
itself must accept the weights) -> commit to the registry -> wait until every live
small-tier replica reports the new generation. A failure at any step raises an
`AdapterError` and leaves the previously active version serving. Each change is counted
(applied, pending or rejected) with its swap time. The admin API (`gateway/admin.py`) is
this module's HTTP face.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Awaitable, Callable, Mapping, Protocol

from pydantic import BaseModel

from adapters.errors import AdapterError, ProbeFailed
from adapters.metrics import AdapterMetrics
from adapters.registry import AdapterRegistry, RegistryState
from engines.errors import EngineError
from engines.types import AdapterReport, AdapterSpec

# A change: the domain it touched and the registry state it left.
Change = Callable[[], Awaitable[tuple[str, RegistryState]]]


class AdapterFleet(Protocol):
    """The small tier's replicas, as a change needs them."""

    async def probe(self, adapter: AdapterSpec) -> None:
        """Load the adapter on one replica; raises EngineError if the engine refuses it."""
        ...

    async def reports(self) -> Mapping[str, AdapterReport]:
        """Per live replica: the registry generation it applied and the adapters it holds."""
        ...


class ChangeResult(BaseModel):
    domain: str
    active: str | None
    candidate: str | None
    generation: int
    converged: bool  # False: some replica had not applied it when the wait ran out
    replicas: int
    swap_seconds: float


class AdapterChanges:
    def __init__(
        self,
        registry: AdapterRegistry,
        fleet: AdapterFleet,
        on_commit: Callable[[], object],
        metrics: AdapterMetrics,
        converge_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.registry = registry
        self.fleet = fleet
        self._on_commit = on_commit  # this replica's own view, refreshed before the wait
        self._metrics = metrics
        self._timeout = converge_timeout_s
        self._clock = clock
        self._lock = asyncio.Lock()  # one change at a time per ingress replica

    async def load(self, path: str, force: bool = False, activate: bool = False) -> ChangeResult:
        async def change() -> tuple[str, RegistryState]:
            manifest = await asyncio.to_thread(self.registry.validate, Path(path))
            await self._probe(AdapterSpec(name=manifest.version, path=path))
            manifest = await asyncio.to_thread(self.registry.register, Path(path), force, activate)
            return manifest.domain, await asyncio.to_thread(self.registry.state)

        return await self._apply("load", change)

    async def activate(self, domain: str, version: str) -> ChangeResult:
        async def change() -> tuple[str, RegistryState]:
            await self._probe_stored(version)
            return domain, await asyncio.to_thread(self.registry.activate, domain, version)

        return await self._apply("activate", change)

    async def rollback(self, domain: str, version: str | None) -> ChangeResult:
        async def change() -> tuple[str, RegistryState]:
            return domain, await asyncio.to_thread(self.registry.rollback, domain, version)

        return await self._apply("rollback", change)

    async def set_candidate(self, domain: str, version: str | None) -> ChangeResult:
        """`version` None clears the domain's candidate slot."""

        async def change() -> tuple[str, RegistryState]:
            if version is not None:
                await self._probe_stored(version)
            return domain, await asyncio.to_thread(self.registry.set_candidate, domain, version)

        return await self._apply("candidate", change)

    async def unload(self, domain: str) -> ChangeResult:
        async def change() -> tuple[str, RegistryState]:
            return domain, await asyncio.to_thread(self.registry.unload, domain)

        return await self._apply("unload", change)

    async def _apply(self, operation: str, change: Change) -> ChangeResult:
        try:
            result = await self._locked(change)
        except AdapterError:
            self._metrics.operations.labels(operation, "rejected").inc()
            raise
        self._metrics.operations.labels(operation, "applied" if result.converged else "pending").inc()
        self._metrics.swap_seconds.labels(operation).observe(result.swap_seconds)
        return result

    async def _locked(self, change: Change) -> ChangeResult:
        started = self._clock()
        async with self._lock:
            domain, state = await change()
            await asyncio.to_thread(self._on_commit)
            converged, replicas = await self._converge(state.generation)
        entry = state.domains.get(domain)
        return ChangeResult(
            domain=domain, active=entry.active if entry else None, candidate=entry.candidate if entry else None,
            generation=state.generation, converged=converged, replicas=replicas,
            swap_seconds=self._clock() - started,
        )

    async def _converge(self, generation: int) -> tuple[bool, int]:
        deadline = self._clock() + self._timeout
        while True:
            reports = await self.fleet.reports()
            if converged(reports, generation):
                return True, len(reports)
            if self._clock() > deadline:
                return False, len(reports)
            await asyncio.sleep(0.05)

    async def _probe_stored(self, version: str) -> None:
        ref = await asyncio.to_thread(self.registry.ref, version)
        await self._probe(AdapterSpec(name=version, path=ref.path))

    async def _probe(self, adapter: AdapterSpec) -> None:
        try:
            await self.fleet.probe(adapter)
        except EngineError as exc:
            raise ProbeFailed(adapter.name, exc) from None


def converged(reports: Mapping[str, AdapterReport], generation: int) -> bool:
    """Every replica that reports has applied `generation`, and at least one reports.

    No report at all says nothing (a board created again, or the small tier restarting),
    so it is not taken as every replica being current: the change waits, and ends
    `pending` if no replica reports before the timeout.
    """
    return bool(reports) and all(r.generation >= generation for r in reports.values())
