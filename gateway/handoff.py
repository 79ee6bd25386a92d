"""The hand-off answer: a normal OpenAI response whose content is the configured hand-off
text, for a request the gateway decides not to answer with a model (the answerability
gate, a category whose rollout mode is `off`). No tier is called, so usage is zero.
"""

from __future__ import annotations

import time
from typing import Any, AsyncIterator

from starlette.responses import JSONResponse, Response, StreamingResponse

from gateway.http import SSE_HEADERS
from gateway.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    Delta,
    TextChoice,
    UsageInfo,
)
from gateway.streaming import DONE, sse

FINISH = "stop"  # the hand-off is a complete answer, not a truncated one


def handoff(
    body: ChatCompletionRequest | CompletionRequest, request_id: str, text: str, headers: dict[str, str],
) -> Response:
    chat = isinstance(body, ChatCompletionRequest)
    if body.stream:
        events = _events(chat, body.model, request_id, text, body.include_usage())
        return StreamingResponse(events, media_type="text/event-stream", headers={**headers, **SSE_HEADERS})
    return JSONResponse(_body(chat, body.model, request_id, text), headers=headers)


def _zero() -> UsageInfo:
    return UsageInfo(prompt_tokens=0, completion_tokens=0, total_tokens=0)


def _body(chat: bool, model: str, request_id: str, text: str) -> dict[str, Any]:
    if chat:
        return ChatCompletion(
            id=f"chatcmpl-{request_id}", model=model, usage=_zero(),
            choices=[ChatChoice(message=AssistantMessage(content=text), finish_reason=FINISH)],
        ).model_dump(mode="json")
    return Completion(
        id=f"cmpl-{request_id}", model=model, usage=_zero(),
        choices=[TextChoice(text=text, finish_reason=FINISH)],
    ).model_dump(mode="json")


async def _events(
    chat: bool, model: str, request_id: str, text: str, include_usage: bool,
) -> AsyncIterator[bytes]:
    """The same event shapes as a streamed model answer (gateway.streaming.ChunkEncoder)."""
    created = int(time.time())
    if chat:
        rid = f"chatcmpl-{request_id}"
        choice = ChatChunkChoice(delta=Delta(role="assistant", content=text), finish_reason=FINISH)
        yield sse(_chat_chunk(rid, created, model, [choice], None, include_usage))
        if include_usage:
            yield sse(_chat_chunk(rid, created, model, [], _zero(), include_usage))
    else:
        rid = f"cmpl-{request_id}"
        choice = TextChoice(text=text, finish_reason=FINISH)
        first = Completion(id=rid, created=created, model=model, choices=[choice])
        yield sse(first.model_dump(mode="json", exclude={"usage"}))
        if include_usage:
            usage = Completion(id=rid, created=created, model=model, choices=[], usage=_zero())
            yield sse(usage.model_dump(mode="json"))
    yield DONE


def _chat_chunk(
    rid: str, created: int, model: str, choices: list[ChatChunkChoice], usage: UsageInfo | None,
    include_usage: bool,
) -> dict[str, Any]:
    chunk = ChatCompletionChunk(id=rid, created=created, model=model, choices=choices, usage=usage)
    body = chunk.model_dump(mode="json")
    if not include_usage:
        body.pop("usage")
    return body
