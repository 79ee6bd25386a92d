"""OpenAI wire models: what clients send and what the gateway answers.

A request field is honoured or refused with a 400 naming it: unknown fields too, and
those whose semantics the gateway cannot honour (echo, best_of, suffix, non-text content). The agent fields (tools, tool_choice,
response_format, n, logprobs) become `engines.types.Agentic`; a tier that cannot honour
one refuses it before dispatch (gateway/capabilities.py).
"""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from engines.types import Agentic, ChatTurn, OutputFormat, SamplingSpec, ToolCall, ToolFunction

logger = logging.getLogger(__name__)

MAX_SEED = 2**63 - 1


class WireModel(BaseModel):
    # A field the gateway does not know is refused by name, as OpenAI does: a client that
    # relies on it (a penalty, a bias) must not get an answer made without it.
    model_config = ConfigDict(extra="forbid")


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class FunctionCall(BaseModel):
    name: str = Field(min_length=1)
    arguments: str


class ToolCallWire(BaseModel):
    """`tool_calls[]` of an assistant message, as OpenAI sends and answers it."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall

    def to_call(self) -> ToolCall:
        return ToolCall(id=self.id, name=self.function.name, arguments=self.function.arguments)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallWire] | None = None  # assistant turns
    tool_call_id: str | None = None  # tool turns: the call this result answers

    @model_validator(mode="after")
    def _tool_fields(self) -> "ChatMessage":
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only an assistant message carries tool_calls")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs the tool_call_id it answers")
        return self

    def to_turn(self) -> ChatTurn:
        role = "system" if self.role == "developer" else self.role
        calls = [call.to_call() for call in self.tool_calls] if self.tool_calls else None
        return ChatTurn(role=role, content=self.text(), tool_calls=calls, tool_call_id=self.tool_call_id)

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    include_usage: bool = False


class SamplingFields(WireModel):
    """Fields shared by chat and text completions."""

    model: str = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-MAX_SEED, le=MAX_SEED)
    n: int = Field(1, ge=1, le=8, description="Choices per request")
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    metadata: dict[Annotated[str, StringConstraints(max_length=64)], Annotated[str, StringConstraints(max_length=512)]] | None = Field(
        None, max_length=16, description="OpenAI metadata (up to 16 string pairs): `category` feeds routing, "
        "grounding, the gate and rollout; every pair is journaled with the answer"
    )
    grounding: bool | None = Field(
        None, description="Gateway extension: answer from the knowledge base (true), never (false); "
        "None = the config's default for the request's domain"
    )
    gate: bool | None = Field(
        None, description="Gateway extension: the answerability gate classifies this message (true), "
        "never (false); None = the config's `support.gate.enabled`"
    )
    cascade: bool | None = Field(
        None, description="Gateway extension (model 'auto'): the router's tier answers first and a weak answer "
        "escalates to the next tier (true), never (false); None = the config's `cascade.categories`"
    )

    @field_validator("stop")
    @classmethod
    def _stop_limits(cls, value: str | list[str] | None) -> str | list[str] | None:
        stops = [value] if isinstance(value, str) else (value or [])
        if len(stops) > 4 or any(not s for s in stops):
            raise ValueError("stop takes up to 4 non-empty strings")
        return value

    def category(self) -> str | None:
        value = (self.metadata or {}).get("category")
        return value if isinstance(value, str) else None

    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def sampling(self, max_tokens: int | None) -> SamplingSpec:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return SamplingSpec(
            max_tokens=max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            stop=stops,
            seed=self.seed,
        )


class FunctionSpec(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolSpec(BaseModel):
    type: Literal["function"]
    function: FunctionSpec


class NamedFunction(BaseModel):
    name: str


class NamedToolChoice(BaseModel):
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaSpec(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> "ResponseFormat":
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("type json_schema needs a json_schema")
        return self

    def to_output(self) -> OutputFormat:
        spec = self.json_schema
        if self.type != "json_schema" or spec is None:
            return OutputFormat(type=self.type)
        return OutputFormat(type="json_schema", name=spec.name, json_schema=spec.schema_ or {}, strict=spec.strict)


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    tools: list[ToolSpec] | None = Field(None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)

    @model_validator(mode="after")
    def _last_turn_is_not_empty(self) -> "ChatCompletionRequest":
        last = self.messages[-1]
        if not last.text().strip() and not last.tool_calls:
            raise ValueError("the last message must contain some text")
        return self

    @model_validator(mode="after")
    def _agent_fields_agree(self) -> "ChatCompletionRequest":
        names = {tool.function.name for tool in self.tools or []}
        choice = self.tool_choice
        if choice == "required" and not names:
            raise ValueError("tool_choice 'required' needs tools")
        if isinstance(choice, NamedToolChoice) and choice.function.name not in names:
            raise ValueError(f"tool_choice names '{choice.function.name}', which is not among the tools")
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs: true")
        return self

    def agentic(self) -> Agentic:
        choice = self.tool_choice
        named = choice.function.name if isinstance(choice, NamedToolChoice) else choice
        return Agentic(
            tools=[ToolFunction(**tool.function.model_dump()) for tool in self.tools or []],
            tool_choice=named, parallel_tool_calls=self.parallel_tool_calls is not False,
            output=self.response_format.to_output() if self.response_format else None, n=self.n,
            logprobs=(self.top_logprobs or 0) if self.logprobs else None,
        )

    def turns(self) -> list[ChatTurn]:
        return [m.to_turn() for m in self.messages]

    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(SamplingFields):
    prompt: str | list[str] = Field(description="One prompt (a list of exactly one is accepted)")
    max_tokens: int | None = Field(16, ge=1)
    echo: Literal[False] = False
    best_of: Literal[1] | None = None
    logprobs: int | None = Field(None, ge=0, le=5)
    suffix: None = None

    @field_validator("prompt")
    @classmethod
    def _single_prompt(cls, value: str | list[str]) -> str | list[str]:
        prompts = [value] if isinstance(value, str) else value
        if len(prompts) != 1:
            raise ValueError("exactly one prompt per request is served")
        if not prompts[0]:
            raise ValueError("prompt must not be empty")
        return value

    def text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]

    def agentic(self) -> Agentic:
        return Agentic(n=self.n, logprobs=self.logprobs)


# ---- responses -------------------------------------------------------------------


class UsageInfo(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


def _omitted_when_none(value: object) -> bool:
    return value is None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    # Present only when the model called tools, as OpenAI answers.
    tool_calls: list[ToolCallWire] | None = Field(None, exclude_if=_omitted_when_none)


class TopLogprobWire(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprobWire(TopLogprobWire):
    top_logprobs: list[TopLogprobWire] = Field(default_factory=list)


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprobWire] | None = None


class TextLogprobs(BaseModel):
    """The completions endpoint's (legacy) logprobs shape."""

    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str | None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChatChoice]
    usage: UsageInfo


class DeltaFunction(BaseModel):
    name: str | None = None
    arguments: str | None = None


class DeltaToolCall(BaseModel):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: DeltaFunction


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[DeltaToolCall] | None = Field(None, exclude_if=_omitted_when_none)


class ChatChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: UsageInfo | None = None


class TextChoice(BaseModel):
    index: int = 0
    text: str
    finish_reason: str | None
    logprobs: TextLogprobs | None = None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[TextChoice]
    usage: UsageInfo | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "gateway"
    parent: str | None = None
    tier: str | None = None
    max_model_len: int | None = None
    active_version: str | None = Field(None, description="Adapters: the domain's active version")
    capabilities: list[str] | None = Field(
        None, description="What the model serves beyond text: tools, json_schema, n, logprobs"
    )
    status: str | None = Field(None, description="Adapter versions: active, candidate or available")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]

