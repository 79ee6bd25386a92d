"""Wire types between the gateway and an engine tier (they cross Ray handles)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

FinishReason = Literal["stop", "length", "abort", "tool_calls"]
# A model tier's name; every package names tiers with this one type. `small` and `large` are
# always there (the embedded pair, adapters on small); ops may add tiers above them
# (deployments.settings `extra_tiers`), so a tier is a name, not a fixed pair.
Tier = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
SMALL: Tier = "small"
LARGE: Tier = "large"


class ToolCall(BaseModel):
    """A function call the model made: `arguments` is JSON text, as OpenAI sends it."""

    id: str
    name: str
    arguments: str


class ChatTurn(BaseModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: str
    tool_calls: list[ToolCall] | None = None  # an assistant turn that called tools
    tool_call_id: str | None = None  # a tool turn: the call it answers


class ToolFunction(BaseModel):
    """A function the model may call (OpenAI `tools[].function`)."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None  # JSON schema of the arguments
    strict: bool | None = None


class OutputFormat(BaseModel):
    """`response_format` (chat) / `text.format` (responses): free text, any JSON object, or
    JSON that validates against `json_schema`."""

    model_config = ConfigDict(populate_by_name=True)

    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    json_schema: dict[str, Any] | None = None
    strict: bool | None = None


# `none` | `auto` | `required`, or the name of the one function that must be called.
ToolChoice = str


class Agentic(BaseModel):
    """What an agent asks beyond plain sampling. Every field here is honoured by the tier
    that serves the request or refused before dispatch (gateway.capabilities)."""

    tools: list[ToolFunction] = Field(default_factory=list)
    tool_choice: ToolChoice | None = None  # None: `auto` when there are tools
    parallel_tool_calls: bool = True
    output: OutputFormat | None = None
    n: int = Field(1, ge=1)
    logprobs: int | None = Field(None, ge=0, description="None: off; k: the chosen token's and the top k")

    def asks(self) -> set[str]:
        """The capabilities a request needs (gateway.capabilities names them)."""
        needs = set()
        if self.tools and self.tool_choice != "none":
            needs.add("tools")
        if self.output is not None and self.output.type != "text":
            needs.add("json_schema")
        if self.n > 1:
            needs.add("n")
        if self.logprobs is not None:
            needs.add("logprobs")
        return needs


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None
    top: list[TopLogprob] = Field(default_factory=list)


class ToolCallDelta(BaseModel):
    """A streamed piece of a tool call: the first piece of call `index` carries its id and
    name, later pieces append to its arguments."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class SamplingSpec(BaseModel):
    """The sampling knobs the gateway forwards; None = engine default."""

    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: list[str] = Field(default_factory=list)
    seed: int | None = None


class AdapterSpec(BaseModel):
    """A LoRA adapter version as an engine loads it: a unique name and a local PEFT directory."""

    name: str
    path: str
    # A remote tier maps the domain to its upstream's LoRA model name (RemoteTierSettings).
    domain: str | None = None


class GenerationRequest(BaseModel):
    """Exactly one of `prompt` (completions) or `messages` (chat) is set."""

    request_id: str
    prompt: str | None = None
    messages: list[ChatTurn] | None = None
    sampling: SamplingSpec = Field(default_factory=SamplingSpec)
    adapter: AdapterSpec | None = Field(None, description="LoRA adapter to apply, if any")
    agentic: Agentic = Field(default_factory=Agentic)


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = Field(
        False, description="Counted by a rule of thumb, not a tokenizer: a remote tier's upstream "
        "sent no usage and the tier has no tokenizer configured"
    )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class GenerationChunk(BaseModel):
    """One streamed increment of choice `index`. `usage` is cumulative over all choices,
    counted by the engine."""

    text: str
    finish_reason: FinishReason | None = None
    usage: Usage
    index: int = 0
    tool_calls: list[ToolCallDelta] = Field(default_factory=list)
    logprobs: list[TokenLogprob] | None = None


class GeneratedChoice(BaseModel):
    """One of the `n` answers."""

    index: int = 0
    text: str
    finish_reason: FinishReason
    tool_calls: list[ToolCall] = Field(default_factory=list)
    logprobs: list[TokenLogprob] | None = None


class GenerationResult(BaseModel):
    """Choice 0 in the top-level fields (what journals, shadow and flags read); with n > 1
    the other choices in `more`."""

    text: str
    finish_reason: FinishReason
    usage: Usage
    tool_calls: list[ToolCall] = Field(default_factory=list)
    logprobs: list[TokenLogprob] | None = None
    more: list[GeneratedChoice] = Field(default_factory=list)

    def choices(self) -> list[GeneratedChoice]:
        first = GeneratedChoice(
            index=0, text=self.text, finish_reason=self.finish_reason, tool_calls=self.tool_calls,
            logprobs=self.logprobs,
        )
        return [first, *self.more]


class EngineLoad(BaseModel):
    """Scheduler state of one replica: the queue-depth signal for routing."""

    running: int = 0
    waiting: int = 0


class AdapterLoadError(BaseModel):
    name: str
    message: str


class AdapterReport(BaseModel):
    """What a small-tier replica reports about its adapters (through the load board)."""

    generation: int = -1
    loaded: list[str] = Field(default_factory=list)
    failed: list[AdapterLoadError] = Field(default_factory=list)
