"""One model tier: a Ray Serve deployment holding an in-process vLLM engine."""

from __future__ import annotations

from typing import AsyncIterator

from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments.load_board import LoadPublisher
from engines.types import EngineInfo, EngineLoad, GenerationChunk, GenerationRequest, GenerationResult
from engines.vllm_engine import EngineSpec, VLLMEngine


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
    def __init__(self, spec: EngineSpec, tier: str, board: DeploymentHandle | None = None) -> None:
        self._engine = VLLMEngine.build(spec)
        self._publisher: LoadPublisher | None = None
        if board is not None:
            replica = serve.get_replica_context().replica_id.unique_id
            self._publisher = LoadPublisher(board, tier, replica, self._engine.load_now)
            self._publisher.start()

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        return await self._engine.generate(request)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        async for chunk in self._engine.stream(request):
            yield chunk

    async def load(self) -> EngineLoad:
        return await self._engine.load()

    async def info(self) -> EngineInfo:
        return await self._engine.info()

    async def check_health(self) -> None:
        await self._engine.check_health()

    def __del__(self) -> None:
        if getattr(self, "_publisher", None) is not None:
            self._publisher.stop()
        engine = getattr(self, "_engine", None)
        if engine is not None:
            engine.shutdown()
