"""The answer's encoders: a completion body, route headers, and server-sent events for
streamed completions. A model's answer and a hand-off go through the same ones.

The HTTP status (200) is sent before generation starts, so a failure after that goes
in-band: an error event, then `[DONE]`, and the stream closes cleanly.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, AsyncIterator

from pydantic import BaseModel

from engines.types import GeneratedChoice, GenerationChunk, GenerationResult, TokenLogprob, ToolCall, Usage
from gateway.errors import EngineFailure, GatewayError
from wire.chat import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChoiceLogprobs,
    Completion,
    Delta,
    DeltaFunction,
    DeltaToolCall,
    FunctionCall,
    TextChoice,
    TextLogprobs,
    TokenLogprobWire,
    ToolCallWire,
    TopLogprobWire,
    UsageInfo,
)
from gateway.state import RequestState

logger = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def sse(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def usage_info(usage: Usage) -> UsageInfo:
    return UsageInfo(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def route_headers(state: RequestState) -> dict[str, str]:
    """Built from what served: a fallback changes the tier."""
    decision = state.decision
    assert decision is not None
    headers = {"x-gateway-tier": decision.tier, "x-gateway-route-reason": decision.reason}
    if decision.score is not None:
        # Full precision: a header must reproduce the comparison the policy made.
        headers["x-gateway-route-score"] = repr(decision.score)
    if decision.threshold is not None:
        headers["x-gateway-route-threshold"] = repr(decision.threshold)
    if decision.queue_depth is not None:
        headers["x-gateway-queue-depth"] = str(decision.queue_depth)
    if decision.expected_wait_s is not None:
        headers["x-gateway-expected-wait"] = f"{decision.expected_wait_s:.2f}"
    if decision.adapter_version:
        headers["x-gateway-adapter"] = decision.adapter_version
    if decision.router_version:
        headers["x-gateway-router-version"] = decision.router_version
    if state.mode:
        headers["x-gateway-mode"] = state.mode
    if state.context is not None:
        headers.update(state.context.headers())
    if state.cascade is not None:
        headers.update(state.cascade.headers(decision.tier))
    return headers


def completion_body(state: RequestState, result: GenerationResult) -> dict[str, Any]:
    usage = usage_info(result.usage)
    if state.endpoint == "chat":
        body: BaseModel = ChatCompletion(
            id=state.response_id, model=state.model_name, usage=usage,
            choices=[
                ChatChoice(
                    index=c.index, message=message(c), finish_reason=c.finish_reason,
                    logprobs=chat_logprobs(c.logprobs),
                )
                for c in result.choices()
            ],
        )
    else:
        body = Completion(
            id=state.response_id, model=state.model_name, usage=usage,
            choices=[
                TextChoice(
                    index=c.index, text=c.text, finish_reason=c.finish_reason,
                    logprobs=text_logprobs(c.logprobs),
                )
                for c in result.choices()
            ],
        )
    return body.model_dump(mode="json")


def message(choice: GeneratedChoice) -> AssistantMessage:
    calls = [wire_call(call) for call in choice.tool_calls] or None
    # A turn that only calls tools has no content (null), as OpenAI answers it.
    return AssistantMessage(content=choice.text if choice.text or not calls else None, tool_calls=calls)


def wire_call(call: ToolCall) -> ToolCallWire:
    return ToolCallWire(id=call.id, function=FunctionCall(name=call.name, arguments=call.arguments))


def chat_logprobs(logprobs: list[TokenLogprob] | None) -> ChoiceLogprobs | None:
    if logprobs is None:
        return None
    return ChoiceLogprobs(content=[
        TokenLogprobWire(
            token=t.token, logprob=t.logprob, bytes=t.bytes,
            top_logprobs=[TopLogprobWire(token=x.token, logprob=x.logprob, bytes=x.bytes) for x in t.top],
        )
        for t in logprobs
    ])


def text_logprobs(logprobs: list[TokenLogprob] | None, offset: int = 0) -> TextLogprobs | None:
    """The completions endpoint's shape: parallel lists, offsets into the text."""
    if logprobs is None:
        return None
    offsets = []
    for t in logprobs:
        offsets.append(offset)
        offset += len(t.token)
    return TextLogprobs(
        tokens=[t.token for t in logprobs], token_logprobs=[t.logprob for t in logprobs],
        top_logprobs=[{x.token: x.logprob for x in t.top} for t in logprobs], text_offset=offsets,
    )


class ChunkEncoder:
    """Encodes engine chunks as OpenAI chunk events for one request (each choice its own
    `index`: the role goes with a choice's first event)."""

    def __init__(self, state: RequestState) -> None:
        self._state = state
        self._created = int(time.time())
        self._roles_sent: set[int] = set()
        self._offsets: dict[int, int] = {}

    def chunk(self, chunk: GenerationChunk) -> bytes:
        state = self._state
        if state.endpoint == "completions":
            offset = self._offsets.get(chunk.index, 0)
            self._offsets[chunk.index] = offset + len(chunk.text)
            choice = TextChoice(
                index=chunk.index, text=chunk.text, finish_reason=chunk.finish_reason,
                logprobs=text_logprobs(chunk.logprobs, offset),
            )
            body = Completion(
                id=state.response_id, created=self._created, model=state.model_name, choices=[choice],
            ).model_dump(mode="json", exclude={"usage"})
            return sse(body)
        first = chunk.index not in self._roles_sent
        self._roles_sent.add(chunk.index)
        calls = [
            DeltaToolCall(
                index=d.index, id=d.id, type="function" if d.id else None,
                function=DeltaFunction(name=d.name, arguments=d.arguments),
            )
            for d in chunk.tool_calls
        ] or None
        delta = Delta(
            content=chunk.text if chunk.text or not calls else None, role="assistant" if first else None,
            tool_calls=calls,
        )
        choice = ChatChunkChoice(
            index=chunk.index, delta=delta, finish_reason=chunk.finish_reason,
            logprobs=chat_logprobs(chunk.logprobs),
        )
        return sse(self._chat([choice], usage=None))

    def usage(self, usage: Usage) -> bytes:
        state = self._state
        if state.endpoint == "completions":
            body = Completion(
                id=state.response_id, created=self._created, model=state.model_name, choices=[],
                usage=usage_info(usage),
            )
            return sse(body.model_dump(mode="json"))
        return sse(self._chat([], usage=usage_info(usage)))

    def _chat(self, choices: list[ChatChunkChoice], usage: UsageInfo | None) -> dict:
        state = self._state
        body = ChatCompletionChunk(
            id=state.response_id, created=self._created, model=state.model_name,
            choices=choices, usage=usage,
        ).model_dump(mode="json")
        if not state.include_usage:
            body.pop("usage")
        return body


async def event_stream(
    state: RequestState, first: GenerationChunk, rest: AsyncIterator[GenerationChunk]
) -> AsyncIterator[bytes]:
    encoder = ChunkEncoder(state)
    usage = first.usage
    try:
        yield encoder.chunk(first)
        async for chunk in rest:
            usage = chunk.usage
            yield encoder.chunk(chunk)
        if state.include_usage:
            yield encoder.usage(usage)
    except GatewayError as exc:
        logger.warning("stream %s failed after start: %s", state.request_id, exc.message)
        yield sse(exc.body())
    except Exception as exc:  # a bug must still end the stream cleanly for the client
        logger.exception("stream %s crashed", state.request_id)
        yield sse(EngineFailure(f"internal error: {type(exc).__name__}").body())
    finally:
        await rest.aclose()  # type: ignore[attr-defined]
    yield DONE
