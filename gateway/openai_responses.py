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
import re
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, AsyncIterator, Callable, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from engines.types import (
    FinishReason,
    GenerationChunk,
    GenerationResult,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    TopLogprob,
    Usage,
)
from gateway.errors import EngineFailure, GatewayError
from gateway.state import RequestState

logger = logging.getLogger(__name__)

LOGPROBS_INCLUDE = "message.output_text.logprobs"

# ---- the request -------------------------------------------------------------------


class _Strict(BaseModel):
    # An unknown field is refused, naming it: this API has many fields the gateway cannot honour.
    model_config = ConfigDict(extra="forbid")


def _as_parts(value: Any) -> Any:
    return [{"type": "input_text", "text": value}] if isinstance(value, str) else value


class ContentPart(_Strict):
    """A client's words (`input_text`), or an earlier answer sent back (`output_text`)."""

    type: Literal["input_text", "output_text"]
    text: str
    annotations: list[Any] | None = None  # as an answered output_text carries them
    logprobs: list[Any] | None = None


# A string, or a list of parts; a string is read as one part.
Parts = Annotated[list[ContentPart], BeforeValidator(_as_parts)]
ItemStatus = Literal["in_progress", "completed", "incomplete"]


class MessageItem(_Strict):
    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: Parts
    id: str | None = None  # an answered message sent back keeps its id and status
    status: ItemStatus | None = None

    def text(self) -> str:
        return "".join(part.text for part in self.content)


class FunctionCallItem(_Strict):
    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str
    id: str | None = None
    status: ItemStatus | None = None


class FunctionCallOutputItem(_Strict):
    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1)
    output: Parts
    id: str | None = None
    status: ItemStatus | None = None

    def text(self) -> str:
        return "".join(part.text for part in self.output)


def _item_type(value: Any) -> Any:
    # A message item may leave out its `type`.
    if isinstance(value, dict):
        return value.get("type", "message")
    return getattr(value, "type", None)


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")],
    Discriminator(
        _item_type, custom_error_type="unsupported_item",
        custom_error_message="an input item is a message, a function_call or a "
        "function_call_output (reasoning, item references and built-in tool items are not served)",
    ),
]


def _as_items(value: Any) -> Any:
    return [{"role": "user", "content": value}] if isinstance(value, str) else value


class FunctionTool(_Strict):
    type: Literal["function"]
    # The chat path's own limits, checked here so that the error names this request's field.
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionChoice(_Strict):
    type: Literal["function"]
    name: str = Field(min_length=1)


ToolChoice = Annotated[
    Annotated[Literal["none", "auto", "required"], Tag("mode")]
    | Annotated[FunctionChoice, Tag("function")],
    Discriminator(lambda v: "mode" if isinstance(v, str) else "function"),
]


class FormatText(_Strict):
    type: Literal["text"]


class FormatJsonObject(_Strict):
    type: Literal["json_object"]


class FormatJsonSchema(_Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["json_schema"]
    name: str = Field(min_length=1, max_length=64)
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None
    description: str | None = None


class TextConfig(_Strict):
    format: FormatText | FormatJsonObject | FormatJsonSchema | None = Field(
        None, discriminator="type"
    )


class ResponsesRequest(_Strict):
    """`POST /v1/responses`. Fields this gateway cannot honour are refused by name."""

    model: str = Field(min_length=1)
    input: Annotated[list[InputItem], BeforeValidator(_as_items)] = Field(
        min_length=1, description="A user message as a string, or the conversation's items"
    )
    instructions: str | None = Field(None, description="A system message before the input")
    tools: list[FunctionTool] | None = Field(None, max_length=128)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_logprobs: int | None = Field(None, ge=0, le=20)
    include: list[Literal["message.output_text.logprobs"]] | None = None
    truncation: Literal["disabled"] | None = Field(None, description="`auto` drops turns: refused")
    metadata: dict[str, str] | None = Field(None, description="`category` feeds routing")
    user: str | None = None
    stream: bool = False
    store: bool | None = Field(None, description="Only false: this gateway stores nothing")
    previous_response_id: str | None = Field(None, description="Refused: this gateway is stateless")
    grounding: bool | None = Field(None, description="Gateway extension, as in chat")
    gate: bool | None = Field(None, description="Gateway extension, as in chat")

    @field_validator("tools", mode="before")
    @classmethod
    def _function_tools_only(cls, value: Any) -> Any:
        for tool in value if isinstance(value, list) else []:
            kind = tool.get("type") if isinstance(tool, dict) else None
            if kind != "function":
                raise PydanticCustomError(
                    "unsupported_tool",
                    "only function tools are served; a tool of type '{kind}' is not",
                    {"kind": kind},
                )
        return value

    @field_validator("tool_choice")
    @classmethod
    def _choice_among_tools(cls, value: Any, info: ValidationInfo) -> Any:
        names = {tool.name for tool in info.data.get("tools") or []}
        if value == "required" and not names:
            raise PydanticCustomError("invalid_tool_choice", "tool_choice 'required' needs tools")
        if isinstance(value, FunctionChoice) and value.name not in names:
            raise PydanticCustomError(
                "invalid_tool_choice", "tool_choice names '{name}', which is not among the tools",
                {"name": value.name},
            )
        return value

    @field_validator("store")
    @classmethod
    def _nothing_stored(cls, value: bool | None) -> bool | None:
        if value:
            raise PydanticCustomError(
                "unsupported_parameter",
                "store: true is not supported: this gateway is stateless and keeps no responses; "
                "send store: false or leave it out",
            )
        return value

    @field_validator("previous_response_id")
    @classmethod
    def _stateless(cls, value: str | None) -> str | None:
        if value is not None:
            raise PydanticCustomError(
                "unsupported_parameter",
                "previous_response_id is not supported: this gateway is stateless; "
                "send the conversation in `input`",
            )
        return value

    def wants_logprobs(self) -> bool:
        return LOGPROBS_INCLUDE in (self.include or []) or self.top_logprobs is not None


# ---- the chat body it becomes -------------------------------------------------------


def to_chat(request: ResponsesRequest) -> dict[str, Any]:
    """The equivalent chat-completions body (the chat wire model validates it)."""
    body: dict[str, Any] = {
        "model": request.model, "messages": chat_messages(request), "stream": request.stream,
    }
    optional = {
        "max_tokens": request.max_output_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "tools": [_chat_tool(tool) for tool in request.tools] if request.tools else None,
        "tool_choice": _chat_tool_choice(request.tool_choice),
        "parallel_tool_calls": request.parallel_tool_calls,
        "response_format": _chat_format(request.text),
        "logprobs": True if request.wants_logprobs() else None,
        "top_logprobs": request.top_logprobs,
        "metadata": request.metadata,
        "user": request.user,
        "grounding": request.grounding,
        "gate": request.gate,
    }
    body.update({name: value for name, value in optional.items() if value is not None})
    return body


def chat_messages(request: ResponsesRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if request.instructions is not None:
        messages.append({"role": "system", "content": request.instructions})
    for item in request.input:
        if isinstance(item, MessageItem):
            messages.append({"role": item.role, "content": item.text()})
        elif isinstance(item, FunctionCallItem):
            _append_call(messages, item)
        else:
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": item.text()})
    return messages


def _append_call(messages: list[dict[str, Any]], item: FunctionCallItem) -> None:
    # Consecutive calls (and the text before them) are one assistant turn in chat, as they
    # were one answer here.
    function = {"name": item.name, "arguments": item.arguments}
    call = {"id": item.call_id, "type": "function", "function": function}
    if messages and messages[-1]["role"] == "assistant":
        messages[-1].setdefault("tool_calls", []).append(call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _chat_tool(tool: FunctionTool) -> dict[str, Any]:
    return {"type": "function", "function": tool.model_dump(exclude={"type"}, exclude_none=True)}


def _chat_tool_choice(choice: str | FunctionChoice | None) -> str | dict[str, Any] | None:
    if isinstance(choice, FunctionChoice):
        return {"type": "function", "function": {"name": choice.name}}
    return choice


def _chat_format(text: TextConfig | None) -> dict[str, Any] | None:
    spec = text.format if text is not None else None
    if spec is None:
        return None
    if isinstance(spec, FormatJsonSchema):
        schema = spec.model_dump(by_alias=True, exclude={"type"}, exclude_none=True)
        return {"type": "json_schema", "json_schema": schema}
    return {"type": spec.type}


# The chat path's errors name chat fields; the client sent these (indices do not carry over).
_CHAT_PARAMS = {
    "messages": "input", "max_tokens": "max_output_tokens",
    "max_completion_tokens": "max_output_tokens", "response_format": "text.format",
    "logprobs": "include",
}


def responses_param(chat_param: str | None) -> str | None:
    """The Responses field a chat-path refusal (`param`) is about."""
    if chat_param is None:
        return None
    head = chat_param.split(".")[0]
    if head in ("tools", "tool_choice"):  # tools.0.function.name -> tools.0.name
        return re.sub(r"\.function(?=\.|$)", "", chat_param)
    return _CHAT_PARAMS.get(head, chat_param)


# ---- the answer ---------------------------------------------------------------------


class TopLogprobOut(BaseModel):
    token: str
    bytes: list[int]
    logprob: float


class LogprobOut(TopLogprobOut):
    top_logprobs: list[TopLogprobOut] = Field(default_factory=list)


class OutputText(BaseModel):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[Any] = Field(default_factory=list)
    logprobs: list[LogprobOut] = Field(default_factory=list)


class OutputMessage(BaseModel):
    type: Literal["message"] = "message"
    id: str
    status: ItemStatus
    role: Literal["assistant"] = "assistant"
    content: list[OutputText]


class OutputFunctionCall(BaseModel):
    type: Literal["function_call"] = "function_call"
    id: str
    call_id: str
    name: str
    arguments: str
    status: ItemStatus


OutputItem = OutputMessage | OutputFunctionCall


class InputTokensDetails(BaseModel):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class ResponseUsage(BaseModel):
    input_tokens: int
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens: int
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int


class IncompleteDetails(BaseModel):
    reason: Literal["max_output_tokens"] | None = None


ResponseStatus = Literal["in_progress", "completed", "incomplete"]


class ResponseObject(BaseModel):
    """What `POST /v1/responses` answers; the request's settings are echoed, as OpenAI does."""

    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: ResponseStatus
    completed_at: int | None = None
    error: None = None
    incomplete_details: IncompleteDetails | None = None
    model: str
    output: list[OutputItem]
    usage: ResponseUsage | None = None
    instructions: str | None
    max_output_tokens: int | None
    metadata: dict[str, str]
    parallel_tool_calls: bool
    previous_response_id: None = None
    temperature: float
    top_p: float
    top_logprobs: int | None
    text: TextConfig
    tool_choice: str | FunctionChoice
    tools: list[FunctionTool]
    truncation: Literal["disabled"] = "disabled"
    user: str | None


def response_usage(usage: Usage) -> ResponseUsage:
    return ResponseUsage(
        input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def outcome(reason: FinishReason) -> tuple[ResponseStatus, IncompleteDetails | None]:
    """A cut answer is `incomplete`: by the token limit, or aborted by the engine (no reason)."""
    if reason == "length":
        return "incomplete", IncompleteDetails(reason="max_output_tokens")
    if reason == "abort":
        return "incomplete", None
    return "completed", None


def output_logprobs(logprobs: list[TokenLogprob] | None) -> list[LogprobOut]:
    return [
        LogprobOut(**_top(t).model_dump(), top_logprobs=[_top(x) for x in t.top])
        for t in logprobs or []
    ]


def _top(t: TokenLogprob | TopLogprob) -> TopLogprobOut:
    # The SDK's type needs the bytes; an engine that sent none gets the token's UTF-8.
    given = t.bytes if t.bytes is not None else list(t.token.encode("utf-8"))
    return TopLogprobOut(token=t.token, bytes=given, logprob=t.logprob)


def delta_logprobs(logprobs: list[TokenLogprob] | None) -> list[dict[str, Any]]:
    """The text events' own (smaller) logprob shape."""
    return [
        {
            "token": t.token, "logprob": t.logprob,
            "top_logprobs": [{"token": x.token, "logprob": x.logprob} for x in t.top],
        }
        for t in logprobs or []
    ]


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
