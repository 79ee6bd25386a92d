"""The engine seam: what the gateway needs from one model tier.

The real implementation is `engines.vllm_engine.VLLMEngine` (wrapped by a Ray Serve
deployment and reached through `deployments.handle_client.HandleEngine`); the fake
used in unit and API tests is `engines.fake.FakeEngine`.
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
