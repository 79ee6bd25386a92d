"""The engine seam: what the gateway needs from one model tier.

Implementations, each held by a tier's Ray Serve replica (`ReplicaEngine`) and reached
through `deployments.handle_client.HandleEngine`:
- `engines.vllm_engine.VLLMEngine`: an in-process vLLM engine (`kind=vllm`);
- `engines.openai_remote.OpenAIRemoteEngine`: any OpenAI-compatible endpoint (`kind=openai`);
- `engines.mock.MockEngine`: synthetic timing and text for load tests (`kind=mock`).
The fake used in unit and API tests is `tests.support.fake_engine.FakeEngine`.
"""

from __future__ import annotations

from typing import AsyncIterator, Protocol

from engines.types import AdapterSpec, EngineLoad, GenerationChunk, GenerationRequest, GenerationResult


class Engine(Protocol):
    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """Run one request to completion. Cancelling the call aborts the generation."""
        ...

    def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        """Stream increments; closing the iterator early aborts the generation."""
        ...

    async def load(self) -> EngineLoad: ...


class AdapterHost(Protocol):
    """An engine that serves LoRA adapters (the small tier)."""

    async def add_adapter(self, adapter: AdapterSpec) -> None:
        """Load into the engine's adapter cache; raises EngineRequestError if it can't."""
        ...


    async def adapters(self) -> set[str]:
        """Names of the adapters loaded now."""
        ...


class ReplicaEngine(Engine, AdapterHost, Protocol):
    """What a tier replica holds (deployments/engine_deployment.py): the engine, its load
    for the load board, and its life cycle."""

    def load_now(self) -> EngineLoad:
        """The load, without waiting: read from the load publisher's thread."""
        ...

    async def run(self) -> None:
        """Background upkeep for the replica's lifetime (returns at once when there is none)."""
        ...

    async def check_health(self) -> None: ...

    def shutdown(self) -> None: ...
