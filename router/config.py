"""The routing part of the live config: which policy, and each policy's knobs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from router.baseline import BaselineRuleConfig
from router.canary import RouterCanaryConfig
from router.learned import LearnedRoutingConfig


class RoutingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy: Literal["learned", "baseline"] = Field(
        "learned", description="learned = the LightGBM router (baseline if no model is loaded)"
    )
    baseline: BaselineRuleConfig = Field(default_factory=BaselineRuleConfig)
    learned: LearnedRoutingConfig = Field(default_factory=LearnedRoutingConfig)
    canary: RouterCanaryConfig = Field(
        default_factory=RouterCanaryConfig, description="Guardrails that promote or reject a candidate router version"
    )
