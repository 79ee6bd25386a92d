"""A synthetic engine for load-testing the gateway layer itself (`GATEWAY_<TIER>__KIND=mock`).

It behaves like a vLLM engine seen from outside, with no model: a request waits for one
of `max_concurrency` slots (vLLM's batch), its first token comes `ttft_s` after it starts
running and each next one `itl_s` later, and its load is reported as running and waiting.
The text is a fixed function of the prompt, so a load test can check what came back.

Of what an agent asks (engines/capabilities.py) it serves `n`: n answers, each drawn
with its own seed, sharing one slot and arriving a token of each per step. Tools, JSON
output and logprobs it refuses (EngineRequestError naming the field): with no model, a
tool call, a schema-valid answer or a logprob would be made up. The gateway refuses them
before dispatch; this is the second line.

Not a test fake (that is `tests.support.fake_engine.FakeEngine`): no end-to-end test uses it in place
of vLLM to show that a feature works.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import AsyncIterator, Awaitable, Callable

from engines.capabilities import CAPABILITIES, PARAMS, missing
from engines.config import MockTierSettings
from engines.errors import ContextLengthExceeded, EngineRequestError
from engines.types import (
    AdapterSpec,
    EngineLoad,
    FinishReason,
    GeneratedChoice,
    GenerationChunk,
    GenerationRequest,
    GenerationResult,
    Usage,
)

VOCABULARY = tuple(
    "the a of and to in is that for it as with on be by this are from at or an which not have has but "
    "all can more one their will would there been what when about so out up into time model answer "
    "request token gateway tier".split()
)


@dataclass(frozen=True)
class MockSpec:
    """How to build one mock engine; plain data so it crosses process boundaries."""

    settings: MockTierSettings
    max_model_len: int
    enable_lora: bool = False


class MockEngine:
    def __init__(
        self,
        spec: MockSpec,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._spec = spec
        self._clock = clock
        self._sleep = sleep
        self._slots = asyncio.Semaphore(spec.settings.max_concurrency)
        self._running = 0
        self._waiting = 0
        self._adapters: set[str] = set()

    # ---- Engine protocol -----------------------------------------------------

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        texts: dict[int, str] = {}
        finishes: dict[int, FinishReason] = {}
        usage = Usage()
        async for chunk in self.stream(request):
            texts[chunk.index] = texts.get(chunk.index, "") + chunk.text
            if chunk.finish_reason is not None:
                finishes[chunk.index] = chunk.finish_reason
            usage = chunk.usage
        more = [GeneratedChoice(index=i, text=texts[i], finish_reason=finishes[i]) for i in sorted(texts)[1:]]
        return GenerationResult(text=texts[0], finish_reason=finishes[0], usage=usage, more=more)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        _refuse_what_it_cannot_honour(request)
        prompt_tokens = len(_prompt_text(request).split())
        budget = self._budget(request, prompt_tokens)
        n = request.agentic.n
        answers = [mock_words(request, budget, choice) for choice in range(n)]
        finish: FinishReason = "length" if budget < self._spec.settings.output_tokens else "stop"
        async with self._slot():
            started = self._clock()
            for step in range(budget):
                await self._until(started + self._spec.settings.ttft_s + step * self._spec.settings.itl_s)
                last = step == budget - 1
                for choice, words in enumerate(answers):
                    yield GenerationChunk(
                        text=words[step] if step == 0 else f" {words[step]}",
                        finish_reason=finish if last else None,
                        usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=step * n + choice + 1),
                        index=choice,
                    )

    async def load(self) -> EngineLoad:
        return self.load_now()

    def load_now(self) -> EngineLoad:
        return EngineLoad(running=self._running, waiting=self._waiting)

    # ---- adapters: any name is "served", so adapter routing can be load-tested too ----

    async def add_adapter(self, adapter: AdapterSpec) -> None:
        self._adapters.add(adapter.name)

    async def adapters(self) -> set[str]:
        return set(self._adapters)

    # ---- replica life cycle ----------------------------------------------------------

    async def run(self) -> None:
        return None

    async def check_health(self) -> None:
        return None

    def shutdown(self) -> None:
        return None

    # ---- internals -------------------------------------------------------------------

    def _budget(self, request: GenerationRequest, prompt_tokens: int) -> int:
        budget = min(request.sampling.max_tokens or self._spec.settings.output_tokens,
                     self._spec.settings.output_tokens)
        limit = self._spec.max_model_len
        if prompt_tokens + budget > limit:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {limit} tokens; the request needs {prompt_tokens + budget}."
            )
        return budget

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """One of the concurrent slots: waiting until there is one, running while held."""
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        self._running += 1
        try:
            yield
        finally:
            self._running -= 1
            self._slots.release()

    async def _until(self, deadline: float) -> None:
        # Paced against the start, not the previous token: a late wake-up does not add
        # up over the answer. Zero still yields, so a busy mock shares the loop.
        await self._sleep(max(0.0, deadline - self._clock()))


def mock_words(request: GenerationRequest, count: int, choice: int = 0) -> list[str]:
    """`count` words drawn from a generator seeded with the prompt's hash (and the choice's
    index): the same prompt always gets the same answers, in every process."""
    digest = hashlib.blake2b(_prompt_text(request).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big") + choice).choices(VOCABULARY, k=count)


def _refuse_what_it_cannot_honour(request: GenerationRequest) -> None:
    unmet = missing(request.agentic, CAPABILITIES["mock"])
    if unmet:
        field = PARAMS[unmet[0]]
        raise EngineRequestError(f"the mock engine can't honour `{field}`: it has no model", param=field)


def _prompt_text(request: GenerationRequest) -> str:
    if request.messages is None:
        return request.prompt or ""
    return "\n".join(f"{turn.role}: {turn.content}" for turn in request.messages)
