"""Turns a resolved target into a routing decision, with the live policy."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Mapping

from engines.types import Tier
from gateway.catalog import ModelTarget
from router.decision import RoutingDecision, RoutingQuery, TierLoad
from router.policy import LearningPolicy, RoutingPolicy

# The latest known loads, read synchronously on the decision path (see gateway.loads).
LoadSnapshot = Callable[[], Mapping[Tier, TierLoad]]


def _no_load() -> Mapping[Tier, TierLoad]:
    return {}


class Router:
    def __init__(self, policy: RoutingPolicy, loads: LoadSnapshot = _no_load, workers: int = 2) -> None:
        self._policy = policy
        self._loads = loads
        # The learned policy costs ~5 ms of CPU a query (far more with the contextual
        # encoder): on the event loop it would stall every stream this ingress serves.
        # Two threads bound the CPU it takes; further decisions wait their turn.
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="router")
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

    async def decide(self, target: ModelTarget, query: RoutingQuery) -> RoutingDecision:
        if target.tier is not None:
            return RoutingDecision(tier=target.tier, reason="explicit")
        policy = self._policy  # a live swap meanwhile: this decision stays with the old one
        loads = self._current_loads()  # read here, on the loop that updates the counts
        decision = await asyncio.get_running_loop().run_in_executor(
            self._executor, policy.decide, query, loads
        )
        # Back on the loop: the policy's live state changes here, one decision at a time.
        if isinstance(policy, LearningPolicy):
            policy.observe(decision)
        return decision
