"""Server-sent events for streamed completions.

The HTTP status (200) is sent before generation starts, so a failure after that goes
in-band: an error event, then `[DONE]`, and the stream closes cleanly.
"""

from __future__ import annotations

import json
import logging
import time
from typing import AsyncIterator

from engines.types import GenerationChunk, Usage
from gateway.errors import EngineFailure, GatewayError
from gateway.protocol import (
    ChatChunkChoice,
    ChatCompletionChunk,
    Completion,
    Delta,
    TextChoice,
    UsageInfo,
)
from gateway.serving import Plan

logger = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"


def sse(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def usage_info(usage: Usage) -> UsageInfo:
    return UsageInfo(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


class ChunkEncoder:
    """Encodes engine chunks as OpenAI chunk events for one plan."""

    def __init__(self, plan: Plan) -> None:
        self._plan = plan
        self._id = ("chatcmpl-" if plan.endpoint == "chat" else "cmpl-") + plan.request_id
        self._created = int(time.time())
        self._role_sent = False

    def chunk(self, chunk: GenerationChunk) -> bytes:
        if self._plan.endpoint == "completions":
            body = Completion(
                id=self._id, created=self._created, model=self._plan.model_name,
                choices=[TextChoice(text=chunk.text, finish_reason=chunk.finish_reason)],
            ).model_dump(mode="json", exclude={"usage"})
            return sse(body)
        delta = Delta(content=chunk.text, role=None if self._role_sent else "assistant")
        self._role_sent = True
        return sse(self._chat(
            [ChatChunkChoice(delta=delta, finish_reason=chunk.finish_reason)], usage=None
        ))

    def usage(self, usage: Usage) -> bytes:
        if self._plan.endpoint == "completions":
            body = Completion(
                id=self._id, created=self._created, model=self._plan.model_name, choices=[],
                usage=usage_info(usage),
            )
            return sse(body.model_dump(mode="json"))
        return sse(self._chat([], usage=usage_info(usage)))

    def _chat(self, choices: list[ChatChunkChoice], usage: UsageInfo | None) -> dict:
        body = ChatCompletionChunk(
            id=self._id, created=self._created, model=self._plan.model_name,
            choices=choices, usage=usage,
        ).model_dump(mode="json")
        if not self._plan.include_usage:
            body.pop("usage")
        return body


async def event_stream(
    plan: Plan, first: GenerationChunk, rest: AsyncIterator[GenerationChunk]
) -> AsyncIterator[bytes]:
    encoder = ChunkEncoder(plan)
    usage = first.usage
    try:
        yield encoder.chunk(first)
        async for chunk in rest:
            usage = chunk.usage
            yield encoder.chunk(chunk)
        if plan.include_usage:
            yield encoder.usage(usage)
    except GatewayError as exc:
        logger.warning("stream %s failed after start: %s", plan.request_id, exc.message)
        yield sse(exc.body())
    except Exception as exc:  # a bug must still end the stream cleanly for the client
        logger.exception("stream %s crashed", plan.request_id)
        yield sse(EngineFailure(f"internal error: {type(exc).__name__}").body())
    finally:
        await rest.aclose()  # type: ignore[attr-defined]
    yield DONE
