"""The learned routing policy: calibrated score, threshold from config, queue shift."""

from __future__ import annotations

from typing import Annotated, Callable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engines.types import Tier
from router.asks import RequestAsks
from router.decision import RoutingDecision, RoutingQuery, StepScore, TierLoad
from router.queue import QueueConfig, QueueShift
from router.rungs import Cut, RungConfig, climb, rung_cuts
from router.thresholds import ShareThreshold, ThresholdConfig
from text.category import normalise_category

ScoreFn = Callable[[str, str | None, RequestAsks], float]  # (text, client category, asks) -> score
PAIR: tuple[Tier, ...] = ("small", "large")
MAX_CATEGORY_SHARES = 64  # a live window each: bounded by config, never by traffic


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

    category_shares: dict[str, dict[Tier, Annotated[float, Field(ge=0.0, le=1.0)]]] = Field(
        default_factory=dict, max_length=MAX_CATEGORY_SHARES,
        description="Category → tier above small → share of that category's auto traffic the tier serves, "
        "met on the category's own live window (e.g. billing: {large: 0.5}); shares count from the top "
        "among the tiers named, and a tier not named keeps its cut",
    )

    @field_validator("category_bars", "category_shares")
    @classmethod
    def _normalised(cls, value: dict[str, dict[Tier, float]]) -> dict[str, dict[Tier, float]]:
        return {normalise_category(k) or k: bars for k, bars in value.items()}

    @model_validator(mode="after")
    def _shares_make_sense(self) -> LearnedRoutingConfig:
        for category, shares in self.category_shares.items():
            if "small" in shares:
                raise ValueError(f"category_shares.{category}: small is what is left, not a share")
            if sum(shares.values()) > 1.0 + 1e-9:
                raise ValueError(f"category_shares.{category}: the shares add up to more than 1")
            both = set(shares) & set(self.category_bars.get(category, {}))
            if both:
                raise ValueError(f"category {category}: {', '.join(sorted(both))} has both a bar and a share")
        return self


class LearnedPolicy:
    def __init__(
        self, score: ScoreFn, config: LearnedRoutingConfig, share: ShareThreshold, order: Sequence[Tier] = PAIR,
        steps: Mapping[Tier, ScoreFn] | None = None, category_windows: Mapping[str, ShareThreshold] | None = None,
    ) -> None:
        self._score = score
        self._windows = dict(category_windows or {})  # the live window of each category with shares
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
        bars = self._bars(query.category or "")
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

    def _bars(self, category: str) -> dict[Tier, float] | None:
        """The category's own bar per tier: its configured bars, and each of its shares as a
        quantile of its own window (counting from the top among the tiers it names)."""
        bars = dict(self._config.category_bars.get(category, {}))
        shares, window = self._config.category_shares.get(category), self._windows.get(category)
        if shares and window is not None:
            above = 0.0
            for tier in reversed(self._order[1:]):
                if tier in shares:
                    above += shares[tier]
                    bars[tier] = window.threshold(min(1.0, above), self._config.thresholds.min_samples)
        return bars or None

    def _floor(self, allowed: Sequence[Tier] | None) -> Tier:
        """The cheapest tier the request may go to."""
        if allowed is None:
            return self._order[0]
        return next((tier for tier in self._order if tier in allowed), self._order[0])

    def observe(self, query: RoutingQuery, decision: RoutingDecision) -> None:
        """Add a decision's score to the live window, and to its category's when that one
        has shares (a category override scored nothing)."""
        if decision.score is None:
            return
        self._share.observe(decision.score)
        window = self._windows.get(query.category or "")
        if window is not None:
            window.observe(decision.score)


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
