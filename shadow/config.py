"""Ops-tunable shadow settings (the ingress `user_config.shadow` section, applied live).

A rule says which primary traffic is mirrored (tier, adapter domain, route reason,
category), to which target, at what sample rate. Targets:
- `small`, `large`: the tier's base model;
- `small:<domain>` (the domain's active adapter) or `small:<domain>@<version>`;
- `candidate`: the candidate version of the primary's adapter domain (a canary); a
  canary is always compared on the same request with the `canary.reference` tier.
"""

from __future__ import annotations

import re
from typing import Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engines.types import Tier
from shadow.privacy import TextPolicy
from text.category import normalise_category

_TARGET = re.compile(r"^(small|large|candidate|small:[a-z0-9_-]+(@[A-Za-z0-9._-]+)?)$")


class MirrorRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: Tier | None = Field(None, description="Primary tier to match; None = any")
    adapter: str | None = Field(
        None, description="Primary adapter domain to match; '*' = any adapter; None = with or without"
    )
    reason: str | None = Field(None, description="Prefix of the route reason, e.g. 'learned:'")
    category: str | None = Field(None, description="Client category to match; None = any")
    target: str = Field(description="small | large | candidate | small:<domain>[@<version>]")
    sample_rate: float = Field(0.0, ge=0.0, le=1.0, description="Share of matching requests mirrored")

    @field_validator("category")
    @classmethod
    def _normalised(cls, value: str | None) -> str | None:
        return normalise_category(value)  # requests carry normalised categories

    @field_validator("target")
    @classmethod
    def _known_target(cls, value: str) -> str:
        if not _TARGET.match(value):
            raise ValueError("must be small, large, candidate or small:<domain>[@<version>]")
        return value


class CanaryConfig(BaseModel):
    """When an adapter version is judged worse than the one it would replace."""

    model_config = ConfigDict(extra="forbid")

    reference: Tier = Field("large", description="Both versions are scored by agreement with this tier")
    min_samples: int = Field(20, ge=1, description="Scored requests per version before any decision")
    margin: float = Field(0.05, ge=0.0, lt=1.0, description="Relative drop that rejects / rolls back")
    min_feedback: int = Field(20, ge=1, description="Rated requests per version before feedback counts")
    auto_reject: bool = Field(True, description="Clear a candidate that fails its canary")
    auto_rollback: bool = Field(True, description="Roll back a promoted version that degrades")


class RetentionConfig(BaseModel):
    """How long the shadow store keeps what it records; pruned in the background."""

    model_config = ConfigDict(extra="forbid")

    days: float = Field(30.0, gt=0, description="Rows older than this are deleted")
    max_rows: int = Field(200_000, ge=1, description="Newest rows kept per table (pairs, requests, feedback, events, flags…)")
    interval_s: float = Field(300.0, gt=0, description="How often the store is pruned and its WAL checkpointed")


class JournalConfig(BaseModel):
    """The answer journal: each served answer kept for `POST /v1/feedback` (drafts always), and
    how much of the user's text it, and each shadow pair, keeps (shadow.privacy)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Record each answer for /v1/feedback (drafts are recorded anyway)")
    store_text: TextPolicy = Field(
        "redacted", description="none | redacted (e-mails, cards, phones, key-like tokens replaced) | full"
    )
    categories: dict[str, TextPolicy] = Field(
        default_factory=dict, description="category -> its own store_text (e.g. opt one category in to full)"
    )

    @field_validator("categories")
    @classmethod
    def _category_keys(cls, value: dict[str, TextPolicy]) -> dict[str, TextPolicy]:
        keys = {normalise_category(k): v for k, v in value.items()}
        if None in keys:
            raise ValueError("a category name must not be empty")
        return {k: v for k, v in keys.items() if k is not None}

    def policy(self, tags: Mapping[str, str]) -> TextPolicy:
        """The text policy of an answer journaled with these tags: its category's (the
        client's, else its adapter domain's), else the journal's."""
        category = tags.get("category") or tags.get("domain")
        return self.categories.get(category or "", self.store_text)


class ShadowConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[MirrorRule] = Field(default_factory=list, description="No rules = no mirroring")
    queue_size: int = Field(64, ge=1, description="Shadow jobs waiting; beyond it they are dropped")
    concurrency: int = Field(1, ge=1, le=64, description="Shadow jobs running at once (per ingress)")
    max_tokens: int | None = Field(
        None, ge=1, description="Cap on a shadow answer's tokens; None = the primary's max_tokens"
    )
    timeout_s: float = Field(120.0, gt=0, description="A shadow call slower than this is abandoned")
    journal: JournalConfig = Field(
        default_factory=JournalConfig, description="The answer journal (`true`/`false`: enabled, text redacted)"
    )
    feedback_per_minute: int = Field(
        60, ge=1, description="POST /v1/feedback calls per key per minute, per ingress replica (429 beyond)"
    )
    canary: CanaryConfig = Field(default_factory=CanaryConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    @field_validator("journal", mode="before")
    @classmethod
    def _journal_switch(cls, value: object) -> object:
        # `journal: true | false` (before store_text existed) still switches it.
        return {"enabled": value} if isinstance(value, bool) else value


Outcome = Literal["stored", "failed", "skipped"]
