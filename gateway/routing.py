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


# Told of every `auto` decision, on the event loop, after it (the router canary).
DecisionHook = Callable[[RoutingQuery, RoutingDecision, str], None]


def _no_hook(query: RoutingQuery, decision: RoutingDecision, request_id: str) -> None:
    return None


class Router:
    def __init__(
        self, policy: RoutingPolicy, loads: LoadSnapshot = _no_load, workers: int = 2,
        version: str = "default",
    ) -> None:
        self._policy = policy
        self._version = version  # of the router model behind the policy; shown in headers
        self.on_decision: DecisionHook = _no_hook
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

    def replace_policy(self, policy: RoutingPolicy, version: str | None = None) -> None:
        """Swap the policy atomically (live config, a new router version); in-flight
        decisions keep the old one."""
        self._policy, self._version = policy, version or self._version

    async def decide(self, target: ModelTarget, query: RoutingQuery, request_id: str = "") -> RoutingDecision:
        if target.tier is not None:
            return RoutingDecision(tier=target.tier, reason="explicit")
        policy, version = self._policy, self._version  # a swap meanwhile: this decision keeps these
        loads = self._current_loads()  # read here, on the loop that updates the counts
        decision = await asyncio.get_running_loop().run_in_executor(
            self._executor, policy.decide, query, loads
        )
        # Back on the loop: the policy's live state changes here, one decision at a time.
        if isinstance(policy, LearningPolicy):
            policy.observe(decision)
        decision = decision.model_copy(update={"router_version": version})
        self.on_decision(query, decision, request_id)
        return decision
