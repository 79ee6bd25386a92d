"""The seam the gateway calls for `model=auto`."""

from __future__ import annotations

from typing import Mapping, Protocol

from engines.types import Tier
from router.decision import RoutingDecision, RoutingQuery, TierLoad


class RoutingPolicy(Protocol):
    def decide(self, query: RoutingQuery, loads: Mapping[Tier, TierLoad]) -> RoutingDecision:
        """Pick a tier for one query. Pure: same inputs, same decision."""
        ...
