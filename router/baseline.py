"""Baseline rule used until a learned router is configured.

It is deliberately simple and says so in every decision's reason ("baseline:..."),
so nobody mistakes it for the learned router: long or multi-question prompts go
to the large tier, everything else to the small one.
"""

from __future__ import annotations

from typing import Mapping

from pydantic import BaseModel, Field

from engines.types import Tier
from router.decision import RoutingDecision, RoutingQuery, TierLoad


class BaselineRuleConfig(BaseModel):
    """Ops-tunable baseline; lives in the ingress `user_config`."""

    model_config = {"extra": "forbid"}

    long_prompt_chars: int = Field(
        600, ge=1, description="Prompts at least this long (characters) score 1.0"
    )
    threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="Score at or above which a query goes to the large tier"
    )


class BaselinePolicy:
    def __init__(self, config: BaselineRuleConfig) -> None:
        self._config = config

    def decide(self, query: RoutingQuery, loads: Mapping[Tier, TierLoad]) -> RoutingDecision:
        score = self._score(query.text)
        tier: Tier = "large" if score >= self._config.threshold else "small"
        reason = "baseline:above_threshold" if tier == "large" else "baseline:below_threshold"
        return RoutingDecision(
            tier=tier, score=score, threshold=self._config.threshold, reason=reason
        )

    def _score(self, text: str) -> float:
        questions = text.count("?")
        length_score = len(text) / self._config.long_prompt_chars
        # Several questions in one message are a cheap proxy for a compound request.
        return min(1.0, length_score + 0.25 * max(0, questions - 1))
