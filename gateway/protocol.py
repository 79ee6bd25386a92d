"""OpenAI wire models: what clients send and what the gateway answers.

Requests tolerate unknown fields (clients send vendor extensions) but the names are
logged; fields whose semantics the gateway cannot honour (n > 1, echo, tools, non-text
content) are rejected rather than silently ignored.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engines.types import ChatTurn, SamplingSpec

logger = logging.getLogger(__name__)

MAX_SEED = 2**63 - 1


class WireModel(BaseModel):
    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _log_unknown(self) -> "WireModel":
        if self.model_extra:
            logger.info("ignoring unknown request fields: %s", sorted(self.model_extra))
        return self


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def to_turn(self) -> ChatTurn:
        role = "system" if self.role == "developer" else self.role
        return ChatTurn(role=role, content=self.text())

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
    n: int = Field(1, ge=1, le=1, description="Only one choice per request is served")
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    metadata: dict[str, Any] | None = Field(
        None, description="OpenAI metadata; `category` feeds routing (overrides, known rates)"
    )
    grounding: bool | None = Field(
        None, description="Gateway extension: answer from the knowledge base (true), never (false); "
        "None = the config's default for the request's domain"
    )
    gate: bool | None = Field(
        None, description="Gateway extension: the answerability gate classifies this message (true), "
        "never (false); None = the config's `support.gate.enabled`"
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


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    tools: None = Field(None, description="Tool calling is not served by this gateway")
    logprobs: Literal[False] | None = None

    @model_validator(mode="after")
    def _last_turn_is_not_empty(self) -> "ChatCompletionRequest":
        if not self.messages[-1].text().strip():
            raise ValueError("the last message must contain some text")
        return self

    def turns(self) -> list[ChatTurn]:
        return [m.to_turn() for m in self.messages]

    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(SamplingFields):
    prompt: str | list[str] = Field(description="One prompt (a list of exactly one is accepted)")
    max_tokens: int | None = Field(16, ge=1)
    echo: Literal[False] = False
    best_of: Literal[1] | None = None
    logprobs: None = None
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


# ---- responses -------------------------------------------------------------------


class UsageInfo(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str | None
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChatChoice]
    usage: UsageInfo


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: str | None = None
    logprobs: None = None


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
    logprobs: None = None


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
    status: str | None = Field(None, description="Adapter versions: active, candidate or available")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]

