"""Tiers above large: where one learned score is cut for each rung of the ladder.

The router scores how much a query needs more than the small tier (higher: harder). With
two tiers one cut splits small from large. With more, each tier above small has a cut, the
cuts rise with the tiers (cheapest first), and a query goes to the highest tier whose cut
its score reaches: the cheapest tier predicted good enough, as every tier below it was
predicted not to be. Ops set each upper tier's cut as a probability (a quality bar) or as
its share of `auto` traffic, met on live traffic like the large share.

A tier may have its own step router, trained by the own-pair loop on the outcomes of the
tier below it and itself (`router register --step <tier>`): its calibrated score, P(this
tier's answer better than the one below's), then decides that climb against the rung's
`probability` (a share cut is a quantile of the pair score's window, not of this one). A
step router's candidate is canaried on the queries that reach the tier below (`canary`).
"""

from __future__ import annotations

from typing import Callable, Collection, Literal, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from engines.types import Tier
from router.canary import RouterCanaryConfig
from router.decision import TierLoad
from router.queue import QueueConfig, QueueShift, shift_threshold
from router.thresholds import ShareThreshold, ThresholdConfig


class RungConfig(BaseModel):
    """When `auto` sends a query to one tier above large."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["probability", "share"] = Field("share", description="Cut at a probability, or at a share of auto traffic")
    probability: float = Field(0.9, ge=0.0, le=1.0, description="Score at or above which this tier serves")
    share: float = Field(0.05, ge=0.0, le=1.0, description="Target share of auto traffic this tier serves")
    queue: QueueConfig = Field(default_factory=QueueConfig, description="Queue shift of this tier's cut")
    canary: RouterCanaryConfig = Field(
        default_factory=RouterCanaryConfig, description="Guardrails of this tier's step router canary "
        "(graded by `outcomes_file` only: no shadow pair mirrors this climb; the share drift is "
        "measured against the active's share of climbs)",
    )


class Cut(BaseModel):
    """One tier's cut, before and after its queue shift."""

    tier: Tier
    base: float
    shift: QueueShift


def rung_cuts(
    order: Sequence[Tier], thresholds: ThresholdConfig, large_queue: QueueConfig,
    upper: Mapping[Tier, RungConfig], share: ShareThreshold, loads: Mapping[Tier, TierLoad],
    bars: Mapping[Tier, float] | None = None, stepped: Collection[Tier] = (),
) -> list[Cut]:
    """The cut of each tier above the cheapest, in order (tiers above large without a rung
    are skipped: `auto` never picks them). Shares count from the top: a tier's share cut
    leaves the shares of every share-mode tier above it to those tiers. `bars`: the query's
    category's own probability bar per tier, replacing that tier's configured cut. `stepped`:
    tiers judged by their own step router, cut at their probability on that router's scale."""
    bars = bars or {}
    rungs = [(tier, upper[tier]) for tier in order[2:] if tier in upper]
    above = sum(r.share for t, r in rungs if r.mode == "share" and t not in stepped)
    large = bars.get(order[1])
    if large is None:
        large = _cut(thresholds.mode, thresholds.probability, thresholds.large_share + above, thresholds, share)
    cuts = [Cut(tier=order[1], base=large, shift=shift_threshold(large, loads.get(order[1]), large_queue, loads.get(order[0])))]
    for tier, rung in rungs:
        own = bars.get(tier)
        if tier in stepped:  # another score: neither a share of the pair's window nor above its cuts
            base = own if own is not None else rung.probability
        else:
            base = own if own is not None else _cut(rung.mode, rung.probability, above, thresholds, share)
            base = max(base, cuts[-1].base)  # cuts rise
            above -= rung.share if rung.mode == "share" else 0.0
        below = cuts[-1].tier
        cuts.append(Cut(tier=tier, base=base, shift=shift_threshold(base, loads.get(tier), rung.queue, loads.get(below))))
    return cuts


def _cut(mode: str, probability: float, share_at_or_above: float, thresholds: ThresholdConfig, share: ShareThreshold) -> float:
    if mode == "probability":
        return probability
    return share.threshold(min(1.0, share_at_or_above), thresholds.min_samples)


def climb(
    score: float, cuts: Sequence[Cut], allowed: Sequence[Tier] | None,
    steps: Mapping[Tier, Callable[[], float]] | None = None,
) -> Cut | None:
    """The cut of the highest allowed tier whose (shifted) cut the score reaches; None: the
    cheapest tier. A tier with its own step router (`steps`: its score, computed on demand)
    is judged by that score, and only for a query that reached the tier below it: the step
    router was trained on that pair's outcomes, so it decides that climb and no other."""
    reached, below = None, True
    for cut in cuts:
        step = steps.get(cut.tier) if steps else None
        if step is not None and not below:
            break
        ok = (step() if step is not None else score) >= cut.shift.threshold
        if ok and (allowed is None or cut.tier in allowed):
            reached = cut
        below = ok
    return reached
