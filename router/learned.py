"""The learned routing policy: calibrated score, threshold from config, queue shift."""

from __future__ import annotations

from typing import Annotated, Callable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engines.types import Tier
from router.asks import RequestAsks
from router.decision import RoutingDecision, RoutingQuery, StepScore, TierLoad
from router.queue import QueueConfig, QueueShift
from router.rungs import Cut, RungConfig, climb, rung_cuts
from router.thresholds import ShareThreshold, ThresholdConfig
from text.category import normalise_category

ScoreFn = Callable[[str, str | None, RequestAsks], float]  # (text, client category, asks) -> score
PAIR: tuple[Tier, ...] = ("small", "large")


class LearnedRoutingConfig(BaseModel):
    """Ops-tunable part of the learned router (ingress `user_config`)."""

    model_config = ConfigDict(extra="forbid")

    thresholds: ThresholdConfig = Field(default_factory=ThresholdConfig)
    queue: QueueConfig = Field(default_factory=QueueConfig)
    upper: dict[Tier, RungConfig] = Field(
        default_factory=dict, max_length=8,
        description="Tiers above large `auto` may pick (settings `extra_tiers`), each with its cut; "
        "one not named here is served only when pinned or escalated to",
    )
    category_bars: dict[str, dict[Tier, Annotated[float, Field(ge=0.0, le=1.0)]]] = Field(
        default_factory=dict, max_length=1000,
        description="Category → tier → probability bar: that category's quality bar per tier, replacing the "
        "tier's cut (share or probability) for its queries (e.g. billing: {large: 0.1})",
    )

    @field_validator("category_bars")
    @classmethod
    def _normalised(cls, value: dict[str, dict[Tier, float]]) -> dict[str, dict[Tier, float]]:
        return {normalise_category(k) or k: bars for k, bars in value.items()}


class LearnedPolicy:
    def __init__(
        self, score: ScoreFn, config: LearnedRoutingConfig, share: ShareThreshold, order: Sequence[Tier] = PAIR,
        steps: Mapping[Tier, ScoreFn] | None = None,
    ) -> None:
        self._score = score
        self._config = config
        self._share = share  # outlives config changes: the live window is not reset
        self._order = tuple(order)  # cheapest first: small, large, then the extra tiers
        self._steps = dict(steps or {})  # a tier's own step router (router/rungs.py)

    def decide(self, query: RoutingQuery, loads: Mapping[Tier, TierLoad]) -> RoutingDecision:
        """Pure (reads the live window, never adds to it): the caller runs it off its event
        loop and hands the decision to `observe` afterwards."""
        override = self._config.thresholds.category_overrides.get(query.category or "")
        if override is not None:
            return RoutingDecision(tier=override, reason="learned:category_override")
        score = self._score(query.text, query.category, query.asks)
        bars = self._config.category_bars.get(query.category or "")
        cuts = rung_cuts(
            self._order, self._config.thresholds, self._config.queue, self._config.upper, self._share, loads, bars,
            stepped=self._steps.keys(),
        )
        asked: dict[Tier, float] = {}
        steps = self._step_scores(query, cuts, asked)
        chosen = climb(score, cuts, query.tiers, steps)
        unshifted = climb(score, [c.model_copy(update={"shift": _unshifted(c)}) for c in cuts], query.tiers, steps)
        shown = chosen or cuts[0]  # the cut it reached, or the first one it stayed below
        load = loads.get(shown.tier)
        return RoutingDecision(
            tier=chosen.tier if chosen is not None else self._floor(query.tiers),
            score=score,
            threshold=shown.shift.threshold,
            reason=_reason(chosen, unshifted),
            queue_depth=load.depth if load is not None else None,
            expected_wait_s=shown.shift.expected_wait_s,
            steps={c.tier: StepScore(score=asked[c.tier], threshold=c.base) for c in cuts if c.tier in asked},
        )

    def _step_scores(
        self, query: RoutingQuery, cuts: Sequence[Cut], scores: dict[Tier, float],
    ) -> dict[Tier, Callable[[], float]]:
        """Each stepped rung's score, computed at most once and only if the climb asks for it
        (a step router costs as much as the pair's); `scores` keeps those asked."""

        def lazily(tier: Tier, score: ScoreFn) -> Callable[[], float]:
            def value() -> float:
                if tier not in scores:
                    scores[tier] = score(query.text, query.category, query.asks)
                return scores[tier]
            return value

        return {cut.tier: lazily(cut.tier, self._steps[cut.tier]) for cut in cuts if cut.tier in self._steps}

    def _floor(self, allowed: Sequence[Tier] | None) -> Tier:
        """The cheapest tier the request may go to."""
        if allowed is None:
            return self._order[0]
        return next((tier for tier in self._order if tier in allowed), self._order[0])

    def observe(self, decision: RoutingDecision) -> None:
        """Add a decision's score to the live window (a category override scored nothing)."""
        if decision.score is not None:
            self._share.observe(decision.score)


def _unshifted(cut: Cut) -> QueueShift:
    return QueueShift(threshold=cut.base, expected_wait_s=cut.shift.expected_wait_s, shifted=False)


def _reason(chosen: Cut | None, unshifted: Cut | None) -> str:
    """A queue that held the query below the tier its score reached says so; otherwise the
    two-tier reasons, whichever tier above small it went to."""
    if unshifted is not None and (chosen is None or chosen.tier != unshifted.tier):
        return "learned:queue_shift"
    if chosen is None:
        return "learned:below_threshold"
    return "learned:must_large" if chosen.shift.shifted else "learned:above_threshold"
