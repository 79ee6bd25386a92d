"""Turns a resolved target into a routing decision, with the live policy."""

from __future__ import annotations

from typing import Callable, Mapping

from engines.types import Tier
from gateway.catalog import ModelTarget
from router.decision import RoutingDecision, RoutingQuery, TierLoad
from router.policy import RoutingPolicy

# The latest known loads, read synchronously on the decision path (see gateway.loads).
LoadSnapshot = Callable[[], Mapping[Tier, TierLoad]]


def _no_load() -> Mapping[Tier, TierLoad]:
    return {}


class Router:
    def __init__(self, policy: RoutingPolicy, loads: LoadSnapshot = _no_load) -> None:
        self._policy = policy
        self._loads = loads
        # Requests this ingress dispatched and not yet finished: a burst arriving within
        # one poll interval must see its own earlier members, not a stale empty queue.
        self._dispatched: dict[Tier, int] = {}

    def dispatched(self, tier: Tier, delta: int) -> None:
        self._dispatched[tier] = self._dispatched.get(tier, 0) + delta

    def _current_loads(self) -> Mapping[Tier, TierLoad]:
        polled = dict(self._loads())
        for tier, local in self._dispatched.items():
            seen = polled.get(tier, TierLoad())
            if local > seen.depth:
                polled[tier] = TierLoad(running=seen.running, waiting=local - seen.running)
        return polled

    def tier_down(self, tier: Tier) -> bool:
        """No live replica of `tier` reports load. An empty snapshot (poller not started or
        stale) says nothing, so it never marks a tier down."""
        polled = self._loads()
        return bool(polled) and tier not in polled

    def replace_policy(self, policy: RoutingPolicy) -> None:
        """Swap the policy atomically (live config); in-flight decisions keep the old one."""
        self._policy = policy

    def decide(self, target: ModelTarget, query: RoutingQuery) -> RoutingDecision:
        if target.tier is not None:
            return RoutingDecision(tier=target.tier, reason="explicit")
        return self._policy.decide(query, self._current_loads())
