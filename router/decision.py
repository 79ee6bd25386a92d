"""What a routing decision is, and what the policy sees when it makes one."""

from __future__ import annotations

from typing import Sequence

from pydantic import BaseModel, Field

from engines.types import Tier
from router.asks import PLAIN, RequestAsks


class RoutingQuery(BaseModel):
    """The part of a request the policy may look at (no model has run yet)."""

    text: str = Field(description="User-visible prompt text, messages joined")
    category: str | None = Field(None, description="Client-supplied category, if any")
    asks: RequestAsks = Field(PLAIN, description="Tools, a schema, turns: what the request asks beyond text")
    tiers: tuple[Tier, ...] | None = Field(
        None, description="The tiers that can serve it (what it asks, how long it is); None: every tier"
    )


class TierLoad(BaseModel):
    """Live load of one tier, summed over its replicas."""

    running: int = 0
    waiting: int = 0

    @property
    def depth(self) -> int:
        return self.running + self.waiting


class StepScore(BaseModel):
    """A step router's score of one query and the cut it was held to (router/rungs.py)."""

    score: float
    threshold: float


class RoutingDecision(BaseModel):
    """Where a request goes and why; recorded in headers and metrics."""

    tier: Tier
    adapter_version: str | None = None  # the LoRA version that serves it; None: the base model
    router_version: str | None = None  # the router version that decided `auto`; None: explicit
    score: float | None = Field(None, description="Policy's difficulty score, if it computes one")
    threshold: float | None = Field(None, description="Threshold the score was compared with")
    reason: str = Field(description="Short machine-readable reason, e.g. 'explicit', 'learned:queue_shift'")
    queue_depth: int | None = Field(None, description="Large tier's waiting + running requests seen")
    expected_wait_s: float | None = Field(None, description="Large tier's expected wait used")
    steps: dict[str, StepScore] = Field(
        default_factory=dict, description="Step routers the climb asked, by the tier each climbs to "
        "(each was asked because the query reached the tier below): what the step canary compares"
    )


class TierConstraint(BaseModel):
    """What `auto` may choose, set before routing by a stage the policy knows nothing of (a
    key over its soft budget: the cheapest tier only). The policy is not asked: the first of
    `tiers` that can serve the request serves it, with `reason`."""

    tiers: tuple[str, ...] = Field(description="Allowed tiers, preferred first")
    reason: str = Field(description="The decision's reason, e.g. 'budget'")

    def pick(self, fitting: Sequence[Tier]) -> Tier | None:
        return next((fit for tier in self.tiers for fit in fitting if fit == tier), None)
