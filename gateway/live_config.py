"""Ops-tunable values of the ingress, delivered as Ray Serve `user_config`.

Validated strictly: an unknown key or a bad value raises, and Ray Serve keeps the
replica on its last good config. `LiveConfigState` remembers what is in force and the
last rejection, so ops can see why a push did not take (`GET /admin/config`).
"""

from __future__ import annotations

import time
from typing import Any, Collection

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engines.resilience import ResilienceConfig
from gateway.settings import LimitSettings
from support.config import SupportConfig
from flags.config import FlagsConfig
from router.config import RoutingConfig
from retrieval.config import GroundingConfig
from shadow.config import ShadowConfig
from spend.config import SpendConfig
from cascade.config import CascadeConfig


class LiveConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    resilience: ResilienceConfig = Field(default_factory=ResilienceConfig)
    shadow: ShadowConfig = Field(default_factory=ShadowConfig, description="Mirroring rules, canary")
    grounding: GroundingConfig = Field(
        default_factory=GroundingConfig, description="Which requests are grounded; the reranker's upgrade"
    )
    limits: LimitSettings | None = Field(
        None, description="Input limits; None = the settings tree's (GATEWAY_LIMITS__*)"
    )
    flags: FlagsConfig = Field(
        default_factory=FlagsConfig, description="Evaluators on a sample of served answers (flags/)"
    )
    support: SupportConfig = Field(
        default_factory=SupportConfig, description="Answerability gate, per-category rollout, hand-off text"
    )
    spend: SpendConfig = Field(
        default_factory=SpendConfig, description="Prices per tier (USD per million tokens) and per-key budgets"
    )
    cascade: CascadeConfig = Field(
        default_factory=CascadeConfig, description="Which `auto` requests run as a cascade, and its confidence bar"
    )

    @classmethod
    def parse(cls, raw: dict[str, Any] | None) -> "LiveConfig":
        return cls.model_validate(raw or {})

    def unknown_tiers(self, known: Collection[str]) -> list[str]:
        """Where this config names a tier the gateway does not serve, as `path: tier` (a
        tier name is only a pattern to the models: which exist is the deployment's)."""
        learned, resilience = self.routing.learned, self.resilience
        named = [
            *(f"routing.learned.thresholds.category_overrides.{c}: {t}" for c, t in learned.thresholds.category_overrides.items()),
            *(f"routing.learned.upper: {t}" for t in learned.upper),
            *(f"routing.learned.category_bars.{c}: {t}" for c, bars in learned.category_bars.items() for t in bars),
            *(f"routing.learned.category_shares.{c}: {t}" for c, shares in learned.category_shares.items() for t in shares),
            *(f"resilience.fallback: {t}" for pair in resilience.fallback.items() for t in pair),
            *(f"resilience.timeout_s: {t}" for t in resilience.timeout_s),
            *(f"spend.tier_budgets: {t}" for t in self.spend.tier_budgets),
            *(f"spend.category_tier_budgets.{c}: {t}" for c, budgets in self.spend.category_tier_budgets.items() for t in budgets),
        ]
        return [f"{where} is not a tier here (tiers: {', '.join(known)})" for where in named
                if where.rsplit(": ", 1)[1] not in known]


def describe(exc: ValidationError) -> str:
    """One line per problem, with the dotted path ops typed in the YAML."""
    problems = []
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"]) or "(root)"
        problems.append(f"{path}: {error['msg']}")
    return "; ".join(problems)


class Rejection(BaseModel):
    message: str
    at: float = Field(description="Unix time of the rejected push")


class LiveConfigState:
    """The config in force on this replica, how many were applied, the last rejection."""

    def __init__(self, config: LiveConfig) -> None:
        self.config = config
        self.applied = 0
        self.applied_at: float | None = None
        self.rejected: Rejection | None = None

    def accept(self, config: LiveConfig) -> None:
        self.config = config
        self.applied += 1
        self.applied_at = time.time()

    def reject(self, message: str) -> None:
        self.rejected = Rejection(message=message, at=time.time())

    def view(self) -> dict[str, Any]:
        return {
            "config": self.config.model_dump(mode="json"),
            "applied": self.applied,
            "applied_at": self.applied_at,
            "last_rejected": self.rejected.model_dump() if self.rejected else None,
        }


INGRESS = "Ingress"


def check_serve_config(document: dict[str, Any]) -> dict[str, str | None]:
    """Validate the ingress `user_config` of each application in a `serve deploy` file.

    Returns the problem per application (None = valid), the same message a running
    replica would log and show on /admin/config if the push went ahead.
    """
    results: dict[str, str | None] = {}
    for application in document.get("applications") or []:
        name = application.get("name", "default")
        # The tiers the app deploys: the pair, then the extra tiers its `args` name.
        extra = (application.get("args") or {}).get("extra_tiers") or {}
        tiers = ("small", "large", *(extra if isinstance(extra, dict) else {}))
        for deployment in application.get("deployments") or []:
            if deployment.get("name") != INGRESS:
                continue
            try:
                unknown = LiveConfig.parse(deployment.get("user_config")).unknown_tiers(tiers)
                results[name] = "; ".join(unknown) or None
            except ValidationError as exc:
                results[name] = describe(exc)
    return results
