"""OpenAI's Responses API on the wire: the request (stateless; every field honoured or
refused by name), its translation to the chat-completions body the gateway serves it as
(`to_chat`), and the `response` object's parts. The edge's encoder is
gateway/openai_responses.py.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any, Literal

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
    TokenLogprob,
    TopLogprob,
    Usage,
)

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
    cascade: bool | None = Field(None, description="Gateway extension, as in chat")

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
        "cascade": request.cascade,
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


