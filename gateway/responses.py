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

from engines.types import GenerationChunk, GenerationResult, Usage
from gateway.errors import EngineFailure, GatewayError
from gateway.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    Completion,
    Delta,
    TextChoice,
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
    return headers


def completion_body(state: RequestState, result: GenerationResult) -> dict[str, Any]:
    usage = usage_info(result.usage)
    if state.endpoint == "chat":
        body: BaseModel = ChatCompletion(
            id=state.response_id,
            model=state.model_name,
            choices=[
                ChatChoice(
                    message=AssistantMessage(content=result.text), finish_reason=result.finish_reason
                )
            ],
            usage=usage,
        )
    else:
        body = Completion(
            id=state.response_id,
            model=state.model_name,
            choices=[TextChoice(text=result.text, finish_reason=result.finish_reason)],
            usage=usage,
        )
    return body.model_dump(mode="json")


class ChunkEncoder:
    """Encodes engine chunks as OpenAI chunk events for one request."""

    def __init__(self, state: RequestState) -> None:
        self._state = state
        self._created = int(time.time())
        self._role_sent = False

    def chunk(self, chunk: GenerationChunk) -> bytes:
        state = self._state
        if state.endpoint == "completions":
            body = Completion(
                id=state.response_id, created=self._created, model=state.model_name,
                choices=[TextChoice(text=chunk.text, finish_reason=chunk.finish_reason)],
            ).model_dump(mode="json", exclude={"usage"})
            return sse(body)
        delta = Delta(content=chunk.text, role=None if self._role_sent else "assistant")
        self._role_sent = True
        return sse(self._chat(
            [ChatChunkChoice(delta=delta, finish_reason=chunk.finish_reason)], usage=None
        ))

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
