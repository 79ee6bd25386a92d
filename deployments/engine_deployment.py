"""One model tier: a Ray Serve deployment holding its engine (vLLM in-process, a remote
endpoint's client, or the mock: deployments/tier_engines.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator

from ray import serve

from adapters.registry import AdapterRegistry
from deployments.adapter_sync import AdapterSync
from deployments.failure_log import ray_failure_counter
from background.failures import log_if_it_dies
from deployments.load_board import BoardAddress, LoadPublisher
from deployments.tier_engines import EngineRecipe, build_engine
from engines.openai_remote import OpenAIRemoteEngine
from engines.types import (
    AdapterReport,
    AdapterSpec,
    EngineLoad,
    GenerationChunk,
    GenerationRequest,
    GenerationResult,
)

logger = logging.getLogger("ray.serve")


# max_ongoing_requests is high on purpose: requests must reach vLLM's continuous
# batching (and its queue, which the router reads) instead of waiting in Ray.
@serve.deployment(
    max_ongoing_requests=256,
    health_check_period_s=10,
    health_check_timeout_s=60,
    graceful_shutdown_timeout_s=10,
    ray_actor_options={"num_cpus": 0},
)
class EngineDeployment:
    def __init__(
        self,
        spec: EngineRecipe,
        tier: str,
        board: BoardAddress | None = None,
        adapters: AdapterRegistry | None = None,
        adapter_poll_s: float = 0.5,
    ) -> None:
        count_failure = ray_failure_counter()
        self._engine = build_engine(spec, count_failure)
        # Ray Serve runs the constructor on the replica's event loop: background tasks
        # live there beside the requests (the engine's clients are bound to it).
        loop = asyncio.get_running_loop()
        self._upkeep = loop.create_task(self._engine.run())  # e.g. a remote tier's metrics scrape
        log_if_it_dies(self._upkeep, "engine-upkeep", logger, count_failure)
        self._sync: AdapterSync | None = None
        if adapters is not None and spec.enable_lora:
            self._sync = AdapterSync(adapters, self._engine, adapter_poll_s, count_failure)
            self._sync_task = loop.create_task(self._sync.run())
            log_if_it_dies(self._sync_task, "adapter-sync", logger, count_failure)
        self._publisher: LoadPublisher | None = None
        if board is not None:
            replica = serve.get_replica_context().replica_id.unique_id
            read, upstream = self._engine.load_now, None
            if isinstance(self._engine, OpenAIRemoteEngine):
                # Every replica scrapes the same upstream queue: the board takes it as a
                # floor under the replicas' summed in-flight counts, not as a sum.
                read, upstream = self._engine.in_flight_now, self._engine.upstream_now
            self._publisher = LoadPublisher(
                board.connect(), tier, replica, read, self._adapter_report, count_failure,
                upstream=upstream or (lambda: None),
            )
            self._publisher.start()

    def _adapter_report(self) -> AdapterReport | None:
        return self._sync.report if self._sync is not None else None

    async def probe_adapter(self, adapter: AdapterSpec) -> None:
        """Load a version on this replica, raising EngineRequestError if vLLM refuses it.

        The admin API calls this before it activates anything, so a corrupt adapter is
        refused while the previous version keeps serving."""
        await self._engine.add_adapter(adapter)

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        return await self._engine.generate(request)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        async for chunk in self._engine.stream(request):
            yield chunk

    async def load(self) -> EngineLoad:
        return await self._engine.load()

    async def check_health(self) -> None:
        await self._engine.check_health()

    def __del__(self) -> None:
        if getattr(self, "_publisher", None) is not None:
            self._publisher.stop()
        engine = getattr(self, "_engine", None)
        if engine is not None:
            engine.shutdown()
