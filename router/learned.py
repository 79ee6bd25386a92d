"""The learned routing policy: calibrated score, threshold from config, queue shift."""

from __future__ import annotations

from typing import Callable, Mapping

from pydantic import BaseModel, ConfigDict, Field

from engines.types import Tier
from router.asks import RequestAsks
from router.decision import RoutingDecision, RoutingQuery, TierLoad
from router.queue import QueueConfig, shift_threshold
from router.thresholds import ShareThreshold, ThresholdConfig, base_threshold

ScoreFn = Callable[[str, str | None, RequestAsks], float]  # (text, client category, asks) -> score


class LearnedRoutingConfig(BaseModel):
    """Ops-tunable part of the learned router (ingress `user_config`)."""

    model_config = ConfigDict(extra="forbid")

    thresholds: ThresholdConfig = Field(default_factory=ThresholdConfig)
    queue: QueueConfig = Field(default_factory=QueueConfig)


class LearnedPolicy:
    def __init__(self, score: ScoreFn, config: LearnedRoutingConfig, share: ShareThreshold) -> None:
        self._score = score
        self._config = config
        self._share = share  # outlives config changes: the live window is not reset

    def decide(self, query: RoutingQuery, loads: Mapping[Tier, TierLoad]) -> RoutingDecision:
        """Pure (reads the live window, never adds to it): the caller runs it off its event
        loop and hands the decision to `observe` afterwards."""
        override = self._config.thresholds.category_overrides.get(query.category or "")
        if override is not None:
            return RoutingDecision(tier=override, reason="learned:category_override")
        score = self._score(query.text, query.category, query.asks)
        base = base_threshold(self._config.thresholds, self._share)
        load = loads.get("large")
        shift = shift_threshold(base, load, self._config.queue, loads.get("small"))
        tier: Tier = "large" if score >= shift.threshold else "small"
        return RoutingDecision(
            tier=tier,
            score=score,
            threshold=shift.threshold,
            reason=_reason(tier, score, base, shift.shifted),
            queue_depth=load.depth if load is not None else None,
            expected_wait_s=shift.expected_wait_s,
        )

    def observe(self, decision: RoutingDecision) -> None:
        """Add a decision's score to the live window (a category override scored nothing)."""
        if decision.score is not None:
            self._share.observe(decision.score)


def _reason(tier: Tier, score: float, base: float, shifted: bool) -> str:
    if tier == "large":
        return "learned:must_large" if shifted else "learned:above_threshold"
    return "learned:queue_shift" if score >= base else "learned:below_threshold"
