"""A stand-in for vLLM's `AsyncLLM`, for tests of `VLLMEngine` that must not start vLLM."""

from __future__ import annotations

from vllm.v1.engine.exceptions import EngineDeadError


class StubAsyncLLM:
    """The parts of vLLM's AsyncLLM that adapter loading touches."""

    def __init__(self, add_error: BaseException | None = None, dead: bool = False) -> None:
        self.add_error = add_error
        self.errored = dead
        self.dead_error = EngineDeadError() if dead else None
        self.added: list[str] = []

    def get_tokenizer(self) -> None:
        return None

    async def add_lora(self, request) -> bool:
        if self.add_error is not None:
            raise self.add_error
        self.added.append(request.lora_name)
        return True

    async def list_loras(self) -> set[int]:
        if self.errored:
            raise EngineDeadError()
        return set()
