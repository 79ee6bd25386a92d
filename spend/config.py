"""Prices and budgets (the ingress `user_config.spend` section, applied live), and where the
spend ledger lives (the settings tree's `spend` section, read once at start).

Prices are keyed by tier name, never by a fixed pair: a tier the table does not name costs
nothing. The defaults are notional (the embedded models cost no one a bill): the small tier
a tenth of the large one, so the counters show what routing moves; set real prices per tier.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from model_files.cache import DEFAULT_CACHE_DIR
from text.category import normalise_category

TierName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
KeyRef = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Period = Literal["day", "month"]


class TierPrice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_per_million: float = Field(0.0, ge=0, description="USD per million prompt tokens")
    output_per_million: float = Field(0.0, ge=0, description="USD per million completion tokens")


def default_prices() -> dict[str, TierPrice]:
    return {
        "small": TierPrice(input_per_million=0.10, output_per_million=0.30),
        "large": TierPrice(input_per_million=1.00, output_per_million=3.00),
    }


class Budget(BaseModel):
    """One key's budget per UTC calendar period. Over `hard_usd`: 429 budget_exceeded until the
    period resets. Over `soft_usd`: `model=auto` is served by the cheapest tier that can serve
    the request (route reason `budget`); a pinned model still goes where it is pinned."""

    model_config = ConfigDict(extra="forbid")

    period: Period = Field("month", description="day or month, UTC calendar periods")
    hard_usd: float | None = Field(None, ge=0, description="Refused (429) once spent; None = no hard budget")
    soft_usd: float | None = Field(None, ge=0, description="auto goes cheapest once spent; None = no soft budget")

    @model_validator(mode="after")
    def _some_limit(self) -> "Budget":
        if self.hard_usd is None and self.soft_usd is None:
            raise ValueError("a budget needs hard_usd, soft_usd or both")
        if self.hard_usd is not None and self.soft_usd is not None and self.soft_usd > self.hard_usd:
            raise ValueError("soft_usd above hard_usd would never apply")
        return self


class TierBudget(BaseModel):
    """A tier's spend per UTC calendar period, every key together: a routing target, not a cap.
    Once spent, `model=auto` stops choosing the tier (the nearest tier below it within its own
    budget serves, route reason `tier_budget`, and a cascade does not escalate into it) until
    the period resets. A pinned model is still served there: a key's hard budget caps that."""

    model_config = ConfigDict(extra="forbid")

    period: Period = Field("day", description="day or month, UTC calendar periods")
    usd: float = Field(gt=0, description="USD the tier may spend in the period (every request it serves counts)")


class SpendConfig(BaseModel):
    """Live: a push changes prices and budgets on the next request, no restart."""

    model_config = ConfigDict(extra="forbid")

    prices: dict[TierName, TierPrice] = Field(
        default_factory=default_prices, max_length=64,
        description="USD per million tokens per tier name; replaces the defaults as a whole; an unnamed tier costs 0",
    )
    budgets: dict[KeyRef, Budget] = Field(
        default_factory=dict, max_length=100_000,
        description="Per API key, by key id or key name (an id wins over a name)",
    )
    tier_budgets: dict[TierName, TierBudget] = Field(
        default_factory=dict, max_length=64,
        description="Per tier: once its spend in the period is reached, `auto` routes below it (a tier not named: unbudgeted)",
    )
    category_tier_budgets: dict[str, dict[TierName, TierBudget]] = Field(
        default_factory=dict, max_length=64,
        description="Per category, per tier: once that category's spend on the tier in the period is reached, "
        "the category's `auto` traffic routes below it (its spend counts from when config names it)",
    )
    default_budget: Budget | None = Field(
        None, description="The budget of every key without one of its own; None = unbudgeted. "
        "Callers without a key (an open gateway) have no budget"
    )

    @field_validator("category_tier_budgets")
    @classmethod
    def _normalised(cls, value: dict[str, dict[str, TierBudget]]) -> dict[str, dict[str, TierBudget]]:
        # Requests carry normalised categories (and spend is labelled by them).
        return {normalise_category(k) or k: budgets for k, budgets in value.items()}


class SpendSettings(BaseModel):
    """The spend ledger: spend aggregated per (hour, key, category, tier), for `gateway spend`
    and to seed the budgets' running totals at start."""

    model_config = ConfigDict(extra="forbid")

    ledger: Path = Field(DEFAULT_CACHE_DIR / "spend.sqlite", description="SQLite spend ledger (0600)")
    retention_days: float = Field(
        400.0, ge=32, description="Hours older than this are deleted (at least a month: monthly budgets read it)"
    )
    max_rows: int = Field(1_000_000, ge=1000, description="Newest aggregated rows kept")
    flush_s: float = Field(
        5.0, gt=0, description="How often the spend is written and the budgets' totals re-read (every "
        "ingress replica's spend: replicas see each other's within this)"
    )
    prune_s: float = Field(3600.0, gt=0, description="How often the ledger is pruned")
    max_pending: int = Field(10_000, ge=1, description="Aggregated rows waiting to be written; beyond it dropped, counted")
    config: SpendConfig = Field(default_factory=SpendConfig, description="Initial prices and budgets (live: user_config.spend)")
