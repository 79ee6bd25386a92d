"""Wire types between the gateway and an engine tier (they cross Ray handles)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

FinishReason = Literal["stop", "length", "abort"]
# The two model tiers behind the gateway; every package names them with this one type.
Tier = Literal["small", "large"]


class ChatTurn(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


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
    """One streamed increment. `usage` is cumulative, counted by the engine."""

    text: str
    finish_reason: FinishReason | None = None
    usage: Usage


class GenerationResult(BaseModel):
    text: str
    finish_reason: FinishReason
    usage: Usage


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
