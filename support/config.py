"""Support-automation controls (design notes 000 and 002): the answerability gate and the
per-category rollout. `SupportConfig` is the ingress `user_config.support` section
(applied live); `SupportSettings` says where the rollout state lives.

A category's mode: `draft` (answers are drafts for human agents, journaled for feedback),
`auto` (customer-facing) or `off` (the hand-off text answers, no tier is called). The
config gives initial modes; a change (`gateway rollout promote`, the admin API, the
automatic review) is written to the rollout state file and overrides it from then on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gate.verdict import GateThresholds
from model_files.cache import DEFAULT_CACHE_DIR
from text.category import normalise_category

Mode = Literal["off", "draft", "auto"]
MODES: tuple[Mode, ...] = ("off", "draft", "auto")  # the order phases are earned in

DEFAULT_HANDOFF = (
    "Thanks for your message. A member of our support team will get back to you shortly."
)


def category_key(category: str | None) -> str | None:
    """The one spelling of a category: clients send `Billing`, ops type `billing`; the
    edge normalises the client's the same way (`text.category`), so the two meet."""
    return normalise_category(category)


class AnswerabilityGateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        False, description="Classify each message before routing; a client's `gate: true` asks for it "
        "even when off, `gate: false` skips it"
    )
    thresholds: GateThresholds = Field(default_factory=GateThresholds)


class PromotionGate(BaseModel):
    """When a category's drafts have earned customer-facing answers (draft -> auto)."""

    model_config = ConfigDict(extra="forbid")

    min_samples: int = Field(50, ge=1, description="Rated drafts needed before the gate can clear")
    match_threshold: float = Field(
        0.85, ge=0, le=1, description="A draft counts as sent unchanged when its agreement with the text "
        "the agent sent is at least this"
    )
    min_match: float = Field(
        0.8, ge=0, le=1, description="Share of drafts (with a sent text) sent unchanged, at least"
    )
    max_negative: float = Field(0.1, ge=0, le=1, description="Share of negative ratings, below this")
    window_days: float = Field(
        14.0, gt=0, description="Drafts served within this window (and since the category entered draft)"
    )


class RolloutConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_mode: Mode = Field("auto", description="Mode of a category no change or entry names")
    categories: dict[str, Mode] = Field(default_factory=dict, description="Initial mode per category")
    promotion_gate: PromotionGate = Field(default_factory=PromotionGate)
    auto_promote: bool = Field(False, description="Promote a draft category to auto when its gate clears")
    auto_demote: bool = Field(
        False, description="Demote an auto category to draft when its negative share breaches the guardrail"
    )
    demote_negative: float = Field(
        0.2, gt=0, le=1, description="Guardrail: negative-rating share of auto answers that demotes"
    )
    demote_min_samples: int = Field(20, ge=1, description="Rated auto answers before the guardrail applies")
    guardrails: dict[str, float] = Field(
        default_factory=dict, description="category -> its own demote_negative"
    )

    @field_validator("categories", "guardrails")
    @classmethod
    def _keys(cls, value: dict[str, object]) -> dict[str, object]:
        keys = {category_key(k): v for k, v in value.items()}
        if None in keys:
            raise ValueError("a category name must not be empty")
        return keys

    @field_validator("guardrails")
    @classmethod
    def _shares(cls, value: dict[str, float]) -> dict[str, float]:
        if any(not 0 < share <= 1 for share in value.values()):
            raise ValueError("a guardrail is a share in (0, 1]")
        return value

    def initial_mode(self, category: str | None) -> Mode:
        return self.categories.get(category or "", self.default_mode)

    def guardrail(self, category: str) -> float:
        return self.guardrails.get(category, self.demote_negative)


class SupportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    handoff_text: str = Field(
        DEFAULT_HANDOFF, min_length=1, description="The answer of a gated request and of a category `off`"
    )
    gate: AnswerabilityGateConfig = Field(default_factory=AnswerabilityGateConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)


class SupportSettings(BaseModel):
    rollout_state: Path = Field(
        DEFAULT_CACHE_DIR / "rollout" / "state.json",
        description="Mode changes per category and their events, shared by every ingress replica",
    )
    poll_s: float = Field(1.0, gt=0, description="How often each ingress replica reads the rollout state")
    review_s: float = Field(
        30.0, gt=0, description="How often each ingress replica reviews the gates (auto_promote, auto_demote)"
    )
    config: SupportConfig = Field(
        default_factory=SupportConfig, description="Initial support config (live: user_config.support)"
    )
