"""A deterministic in-process engine for unit and API tests of gateway logic.

It implements `engines.protocol.Engine`, so every consumer tests against the same interface.
Tokens are whitespace-separated words; the reply echoes the prompt's words.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

from engines.errors import ContextLengthExceeded, EngineError, EngineRequestError, EngineUnavailable
from engines.types import (
    AdapterSpec,
    EngineLoad,
    GeneratedChoice,
    GenerationChunk,
    GenerationRequest,
    GenerationResult,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    TopLogprob,
    Usage,
)


class FakeEngine:
    def __init__(
        self,
        name: str = "fake",
        max_model_len: int = 256,
        token_delay_s: float = 0.0,
        fail_after: int | None = None,
    ) -> None:
        self.name = name
        self.max_model_len = max_model_len
        self.token_delay_s = token_delay_s
        self.fail_after = fail_after  # raise EngineError after this many tokens
        self.running: set[str] = set()
        self.aborted: list[str] = []
        self.seen: list[GenerationRequest] = []
        self.loaded: dict[str, str] = {}  # adapter name -> path
        self.bad_adapters: set[str] = set()  # names whose load fails, to test error paths
        self.unavailable_for = 0  # the next N calls fail as if the replica were gone (-1: all)
        self.calls = 0

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        choices: dict[int, GeneratedChoice] = {}
        usage = Usage()
        async for chunk in self.stream(request):
            c = choices.setdefault(chunk.index, GeneratedChoice(index=chunk.index, text="", finish_reason="length"))
            c.text += chunk.text
            c.finish_reason = chunk.finish_reason or c.finish_reason
            c.tool_calls += [ToolCall(id=d.id or "", name=d.name or "", arguments=d.arguments) for d in chunk.tool_calls]
            if chunk.logprobs is not None:
                c.logprobs = (c.logprobs or []) + chunk.logprobs
            usage = chunk.usage
        first, *more = [choices[i] for i in sorted(choices)]
        return GenerationResult(
            text=first.text, finish_reason=first.finish_reason, usage=usage, tool_calls=first.tool_calls,
            logprobs=first.logprobs, more=more,
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        self.calls += 1
        if self.unavailable_for:
            self.unavailable_for -= 1 if self.unavailable_for > 0 else 0
            raise EngineUnavailable(f"{self.name} is down (injected)")
        self.seen.append(request)
        prompt = _prompt_words(request)
        budget = self._budget(request, len(prompt))
        words = (prompt * (budget // max(1, len(prompt)) + 1))[:budget]
        self.running.add(request.request_id)
        finished = False
        agentic = request.agentic
        try:
            call = _forced_call(request)
            if call is not None:  # tool_choice required / a named tool: one call, no text
                yield GenerationChunk(
                    text="", finish_reason="tool_calls", tool_calls=[call],
                    usage=Usage(prompt_tokens=len(prompt), completion_tokens=1),
                )
                finished = True
                return
            for index in range(agentic.n):  # each choice the same words, one after the other
                for i, word in enumerate(words, start=1):
                    if self.fail_after is not None and i > self.fail_after:
                        raise EngineError("injected failure")
                    await asyncio.sleep(self.token_delay_s)
                    last = i == len(words)
                    piece = (" " if i > 1 else "") + word
                    yield GenerationChunk(
                        text=piece, index=index, finish_reason="length" if last else None,
                        usage=Usage(prompt_tokens=len(prompt), completion_tokens=index * len(words) + i),
                        logprobs=_logprobs(piece, agentic.logprobs),
                    )
            finished = True
        finally:
            self.running.discard(request.request_id)
            if not finished:
                self.aborted.append(request.request_id)

    def _budget(self, request: GenerationRequest, prompt_len: int) -> int:
        wanted = request.sampling.max_tokens or (self.max_model_len - prompt_len)
        if prompt_len + wanted > self.max_model_len:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {self.max_model_len} tokens; "
                f"the request needs {prompt_len + wanted}.",
            )
        return wanted

    async def load(self) -> EngineLoad:
        return EngineLoad(running=len(self.running))

    async def add_adapter(self, adapter: AdapterSpec) -> None:
        if adapter.name in self.bad_adapters:
            raise EngineRequestError(f"could not load adapter '{adapter.name}'", param="model")
        self.loaded[adapter.name] = adapter.path


    async def adapters(self) -> set[str]:
        return set(self.loaded)


def _forced_call(request: GenerationRequest) -> ToolCallDelta | None:
    agentic = request.agentic
    if not agentic.tools or agentic.tool_choice in (None, "none", "auto"):
        return None
    name = agentic.tools[0].name if agentic.tool_choice == "required" else agentic.tool_choice
    return ToolCallDelta(index=0, id="call_fake0", name=name, arguments="{}")


def _logprobs(piece: str, top: int | None) -> list[TokenLogprob] | None:
    """Made-up numbers, fine for a test double: -0.5 for the token, less for the others."""
    if top is None:
        return None
    others = [TopLogprob(token=f"alt{k}", logprob=-1.0 - k) for k in range(top)]
    return [TokenLogprob(token=piece, logprob=-0.5, top=others)]


def _prompt_words(request: GenerationRequest) -> list[str]:
    if request.prompt is not None:
        return request.prompt.split() or ["empty"]
    text = " ".join(turn.content for turn in request.messages or [])
    return text.split() or ["empty"]
