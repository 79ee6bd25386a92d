"""Ops-tunable values of the ingress, delivered as Ray Serve `user_config`.

Validated strictly: an unknown key or a bad value raises, and Ray Serve keeps the
replica on its last good config.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.resilience import ResilienceConfig
from router.config import RoutingConfig


class LiveConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    resilience: ResilienceConfig = Field(default_factory=ResilienceConfig)

    @classmethod
    def parse(cls, raw: dict[str, Any] | None) -> "LiveConfig":
        return cls.model_validate(raw or {})
