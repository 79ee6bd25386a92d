"""The seam the gateway calls for `model=auto`."""

from __future__ import annotations

from typing import Mapping, Protocol, runtime_checkable

from engines.types import Tier
from router.decision import RoutingDecision, RoutingQuery, TierLoad


class RoutingPolicy(Protocol):
    def decide(self, query: RoutingQuery, loads: Mapping[Tier, TierLoad]) -> RoutingDecision:
        """Pick a tier for one query. Pure: same inputs, same decision. It may take
        milliseconds of CPU, so the gateway calls it off its event loop, two at a time."""
        ...


@runtime_checkable
class LearningPolicy(RoutingPolicy, Protocol):
    """A policy whose live state follows its own decisions (the share threshold's window)."""

    def observe(self, query: RoutingQuery, decision: RoutingDecision) -> None:
        """Record a decision `decide` returned: once per decision, after it, one at a time."""
        ...
