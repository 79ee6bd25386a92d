"""`POST /v1/responses`: OpenAI's Responses API, stateless, as a translation over the chat path.

    ResponsesRequest ──to_chat──> a chat-completions body: the chat path runs unchanged
                                  (routing, adapters, grounding, gate, dispatch, sinks, charge)
    GenerationResult ──ResponsesEncoder.body──> a `response` object
    GenerationChunks ──ResponsesEncoder.events──> typed server-sent events (`event: <type>`)

Stateless: nothing is stored. `previous_response_id` is refused (send the conversation in
`input`; an earlier answer's `output` items are read back as they were answered), and so is
`store: true`, since a stored response could never be fetched. Every other field is honoured
or refused with a 400 that names it (unknown fields included), as the chat path does.

A stream's output items stay open until the engine's stream ends, then close in output
order: an engine may interleave text and tool-call fragments, and an item closed early could
not take a late fragment. A failure after the start goes in-band as an `error` event and the
stream ends (there is no `[DONE]` in this API).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

from pydantic import (
    BaseModel,
)

from engines.types import (
    FinishReason,
    GenerationChunk,
    GenerationResult,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from gateway.errors import EngineFailure, GatewayError
from gateway.state import RequestState
from wire.responses import (
    FormatText,
    IncompleteDetails,
    ItemStatus,
    OutputFunctionCall,
    OutputItem,
    OutputMessage,
    OutputText,
    ResponseObject,
    ResponseStatus,
    ResponsesRequest,
    TextConfig,
    delta_logprobs,
    outcome,
    output_logprobs,
    response_usage,
)

logger = logging.getLogger(__name__)


class ResponsesEncoder:
    """Encodes one request's answer as a Responses `response` (`body`) or its event stream
    (`events`). Built from the request at parse time: the answer echoes its settings."""

    def __init__(self, request: ResponsesRequest, clock: Callable[[], float] = time.time) -> None:
        self.request = request
        self._clock = clock
        self._created = int(clock())

    def body(self, state: RequestState, result: GenerationResult) -> dict[str, Any]:
        status, details = outcome(result.finish_reason)
        item_status: ItemStatus = "completed" if status == "completed" else "incomplete"
        output: list[OutputItem] = []
        if result.text or not result.tool_calls:
            text = OutputText(text=result.text, logprobs=output_logprobs(result.logprobs))
            output.append(OutputMessage(id=message_id(state), status=item_status, content=[text]))
        output += [
            function_call(state, n, call, item_status) for n, call in enumerate(result.tool_calls)
        ]
        return self.dump(self.response(state, status, output, result.usage, details))

    def response(
        self, state: RequestState, status: ResponseStatus, output: list[OutputItem],
        usage: Usage | None = None, details: IncompleteDetails | None = None,
    ) -> ResponseObject:
        return ResponseObject(
            id=response_id(state), created_at=self._created, status=status,
            completed_at=int(self._clock()) if status == "completed" else None,
            incomplete_details=details, model=state.model_name, output=output,
            usage=response_usage(usage) if usage is not None else None, **self._echo(),
        )

    def _echo(self) -> dict[str, Any]:
        """The request's settings as the answer repeats them (OpenAI's defaults when unset)."""
        request = self.request
        text = request.text if request.text and request.text.format else None
        return {
            "instructions": request.instructions, "max_output_tokens": request.max_output_tokens,
            "metadata": request.metadata or {},
            "parallel_tool_calls": request.parallel_tool_calls is not False,
            "temperature": 1.0 if request.temperature is None else request.temperature,
            "top_p": 1.0 if request.top_p is None else request.top_p,
            "top_logprobs": request.top_logprobs,
            "text": text or TextConfig(format=FormatText(type="text")),
            "tool_choice": request.tool_choice or "auto", "tools": request.tools or [],
            "user": request.user,
        }

    @staticmethod
    def dump(model: BaseModel) -> dict[str, Any]:
        return model.model_dump(mode="json", by_alias=True)

    async def events(
        self, state: RequestState, first: GenerationChunk, rest: AsyncIterator[GenerationChunk]
    ) -> AsyncIterator[bytes]:
        """The stream's events: `first` is the engine's first chunk (read before answering)."""
        stream = _Stream(self, state)
        try:
            for event in stream.start():
                yield event
            for event in stream.chunk(first):
                yield event
            async for chunk in rest:
                for event in stream.chunk(chunk):
                    yield event
            for event in stream.finish():
                yield event
        except GatewayError as exc:
            logger.warning("stream %s failed after start: %s", state.request_id, exc.message)
            yield stream.error(exc)
        except Exception as exc:  # a bug must still end the stream cleanly for the client
            logger.exception("stream %s crashed", state.request_id)
            yield stream.error(EngineFailure(f"internal error: {type(exc).__name__}"))
        finally:
            await rest.aclose()  # type: ignore[attr-defined]


def response_id(state: RequestState) -> str:
    return "resp_" + state.request_id


def message_id(state: RequestState) -> str:
    return "msg_" + state.request_id  # one message item per answer


def call_item_id(state: RequestState, n: int) -> str:
    return f"fc_{state.request_id}_{n}"


def function_call(
    state: RequestState, n: int, call: ToolCall, status: ItemStatus
) -> OutputFunctionCall:
    return OutputFunctionCall(
        id=call_item_id(state, n), call_id=call.id, name=call.name, arguments=call.arguments,
        status=status,
    )


# ---- the stream ----------------------------------------------------------------------


@dataclass
class _OpenMessage:
    index: int  # its output_index
    text: list[str] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)


@dataclass
class _OpenCall:
    index: int
    call: int  # the engine's tool-call index
    call_id: str
    name: str
    arguments: list[str] = field(default_factory=list)


class _Stream:
    """The event sequence of one streamed answer: numbered from 0, items opened as the
    engine's pieces first name them, all closed (in output order) when the engine is done."""

    def __init__(self, encoder: ResponsesEncoder, state: RequestState) -> None:
        self._encoder = encoder
        self._state = state
        self._sequence = 0
        self._items: list[_OpenMessage | _OpenCall] = []
        self._message: _OpenMessage | None = None
        self._calls: dict[int, _OpenCall] = {}
        self._usage = Usage()
        self._reason: FinishReason = "stop"

    def start(self) -> list[bytes]:
        response = self._encoder.dump(self._encoder.response(self._state, "in_progress", []))
        return [
            self._event("response.created", response=response),
            self._event("response.in_progress", response=response),
        ]

    def chunk(self, chunk: GenerationChunk) -> list[bytes]:
        self._usage = chunk.usage  # cumulative
        if chunk.finish_reason is not None:
            self._reason = chunk.finish_reason
        events = self._text(chunk.text, chunk.logprobs) if chunk.text or chunk.logprobs else []
        for delta in chunk.tool_calls:
            events += self._call_delta(delta)
        return events

    def finish(self) -> list[bytes]:
        status, details = outcome(self._reason)
        item_status: ItemStatus = "completed" if status == "completed" else "incomplete"
        events = [] if self._items else self._open_message()  # an empty answer is an empty message
        output: list[OutputItem] = []
        for item in self._items:
            done, closed = self._close(item, item_status)
            events += done
            output.append(closed)
        response = self._encoder.response(self._state, status, output, self._usage, details)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return [*events, self._event(kind, response=self._encoder.dump(response))]

    def error(self, exc: GatewayError) -> bytes:
        # The typed shape at the top level; the nested `error` too, as OpenAI sends it, so that
        # clients which raise on it (the openai SDK) do.
        error = exc.body()["error"]
        return self._event(
            "error", code=exc.code, message=exc.message, param=exc.param, error=error
        )

    # ---- items ---------------------------------------------------------------------------

    def _text(self, text: str, logprobs: list[TokenLogprob] | None) -> list[bytes]:
        events = self._open_message() if self._message is None else []
        message = self._message
        assert message is not None
        message.text.append(text)
        message.logprobs += logprobs or []
        events.append(self._event(
            "response.output_text.delta", item_id=self._message_id(), output_index=message.index,
            content_index=0, delta=text, logprobs=delta_logprobs(logprobs),
        ))
        return events

    def _open_message(self) -> list[bytes]:
        message = self._message = _OpenMessage(index=len(self._items))
        self._items.append(message)
        item = OutputMessage(id=self._message_id(), status="in_progress", content=[])
        return [
            self._event(
                "response.output_item.added", output_index=message.index,
                item=self._encoder.dump(item),
            ),
            self._event(
                "response.content_part.added", item_id=item.id, output_index=message.index,
                content_index=0, part=self._encoder.dump(OutputText(text="")),
            ),
        ]

    def _call_delta(self, delta: ToolCallDelta) -> list[bytes]:
        events: list[bytes] = []
        call = self._calls.get(delta.index)
        if call is None:
            call = self._open_call(delta)
            events.append(self._event(
                "response.output_item.added", output_index=call.index,
                item=self._encoder.dump(self._call_item(call, "in_progress")),
            ))
        elif delta.name and not call.name:
            call.name = delta.name
        if delta.arguments:
            call.arguments.append(delta.arguments)
            events.append(self._event(
                "response.function_call_arguments.delta", item_id=self._call_id(call),
                output_index=call.index, delta=delta.arguments,
            ))
        return events

    def _open_call(self, delta: ToolCallDelta) -> _OpenCall:
        # The first piece of a call carries its id; one without gets a stable one of ours.
        call_id = delta.id or f"call_{self._state.request_id}_{delta.index}"
        call = _OpenCall(
            index=len(self._items), call=delta.index, call_id=call_id, name=delta.name or ""
        )
        self._calls[delta.index] = call
        self._items.append(call)
        return call

    def _close(
        self, item: _OpenMessage | _OpenCall, status: ItemStatus
    ) -> tuple[list[bytes], OutputItem]:
        if isinstance(item, _OpenCall):
            closed: OutputItem = self._call_item(item, status)
            events = [self._event(
                "response.function_call_arguments.done", item_id=closed.id, output_index=item.index,
                arguments=closed.arguments,
            )]
        else:
            text = "".join(item.text)
            part = OutputText(text=text, logprobs=output_logprobs(item.logprobs))
            closed = OutputMessage(id=self._message_id(), status=status, content=[part])
            common = {"item_id": closed.id, "output_index": item.index, "content_index": 0}
            events = [
                self._event(
                    "response.output_text.done", **common, text=text,
                    logprobs=delta_logprobs(item.logprobs),
                ),
                self._event("response.content_part.done", **common, part=self._encoder.dump(part)),
            ]
        events.append(self._event(
            "response.output_item.done", output_index=item.index, item=self._encoder.dump(closed)
        ))
        return events, closed

    def _call_item(self, call: _OpenCall, status: ItemStatus) -> OutputFunctionCall:
        done = ToolCall(id=call.call_id, name=call.name, arguments="".join(call.arguments))
        return function_call(self._state, call.call, done, status)

    def _message_id(self) -> str:
        return message_id(self._state)

    def _call_id(self, call: _OpenCall) -> str:
        return call_item_id(self._state, call.call)

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        data = json.dumps(payload, separators=(",", ":"))
        return f"event: {kind}\ndata: {data}\n\n".encode()
