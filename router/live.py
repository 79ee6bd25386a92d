"""The router in service on one ingress: the live policy, rebuilt when the live config or
the router version changes, deciding `auto` requests inline when a decision is cheap and on
its own threads when it is not."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Mapping, Sequence

from prometheus_client import CollectorRegistry

from engines.types import Tier
from router.baseline import BaselinePolicy
from router.config import RoutingConfig
from router.decision import RoutingDecision, RoutingQuery, TierLoad
from router.learned import LearnedPolicy
from router.loading import LoadedRouter
from router.policy import LearningPolicy, RoutingPolicy
from router.registry import RouterRegistry
from router.telemetry import RouterMetrics
from router.thresholds import ShareThreshold
from router.versions import Loader, RouterVersions

logger = logging.getLogger(__name__)

# The latest known loads, read synchronously on the decision path (the ingress's load poller).
LoadSnapshot = Callable[[], Mapping[Tier, TierLoad]]


def _no_load() -> Mapping[Tier, TierLoad]:
    return {}


# Told of every `auto` decision, on the event loop, after it (the router canary).
DecisionHook = Callable[[RoutingQuery, RoutingDecision, str], None]


def _no_hook(query: RoutingQuery, decision: RoutingDecision, request_id: str) -> None:
    return None


# A decision measured below this runs inline on the event loop. Handing it to a thread costs
# a wake-up and two GIL hand-offs, each up to sys.getswitchinterval() (5 ms) on a busy replica:
# as much as a static-embedder decision takes (~1-2 ms, measured on 2 cores). A slower policy
# (the contextual encoder) stays on the threads, where it cannot stall this ingress's streams.
INLINE_BUDGET_S = 0.004
_COST_WEIGHT = 0.1  # of the latest decision in the running cost estimate


class DecisionCost:
    """A policy's running CPU cost per decision (an exponentially weighted mean), None until it
    has decided once: an unknown policy is assumed slow."""

    def __init__(self) -> None:
        self.seconds: float | None = None

    def add(self, seconds: float) -> None:
        # A plain float store: threads and the loop may both add, and a lost update is harmless.
        self.seconds = seconds if self.seconds is None else self.seconds + _COST_WEIGHT * (seconds - self.seconds)

    def cheap(self, budget_s: float) -> bool:
        return self.seconds is not None and self.seconds <= budget_s


class LiveRouter:
    def __init__(
        self, policy: RoutingPolicy, loads: LoadSnapshot = _no_load, workers: int = 2,
        version: str = "default", metrics: RouterMetrics | None = None,
        inline_budget_s: float = INLINE_BUDGET_S,
    ) -> None:
        self._policy = policy
        self._version = version  # of the router model behind the policy; shown in headers
        self.on_decision: DecisionHook = _no_hook
        self._loads = loads
        self._metrics = metrics or RouterMetrics(CollectorRegistry())  # none given: kept apart
        # A slow policy (see INLINE_BUDGET_S) decides here: two threads bound the CPU it
        # takes; further decisions wait their turn.
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="router")
        self._inline_budget_s = inline_budget_s
        self._cost = DecisionCost()
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
        self._cost = DecisionCost()  # another policy, another cost: measured again off the loop

    async def decide(self, pinned: Tier | None, query: RoutingQuery, request_id: str = "") -> RoutingDecision:
        """`pinned`: the tier the client named (`explicit`, the policy is not asked);
        None: `auto`, the live policy decides."""
        if pinned is not None:
            return RoutingDecision(tier=pinned, reason="explicit")
        policy, version = self._policy, self._version  # a swap meanwhile: this decision keeps these
        loads = self._current_loads()  # read here, on the loop that updates the counts
        cost = self._cost
        if cost.cheap(self._inline_budget_s):
            decision = _timed(policy, query, loads, cost)
        else:
            decision = await asyncio.get_running_loop().run_in_executor(
                self._executor, _timed, policy, query, loads, cost
            )
        # Back on the loop: the policy's live state changes here, one decision at a time.
        if isinstance(policy, LearningPolicy):
            policy.observe(query, decision)
        decision = decision.model_copy(update={"router_version": version})
        self.on_decision(query, decision, request_id)
        return decision

    def record(self, decision: RoutingDecision) -> None:
        """Count a request's final decision (with its adapter, before any fallback)."""
        self._metrics.record(decision)


def _timed(
    policy: RoutingPolicy, query: RoutingQuery, loads: Mapping[Tier, TierLoad], cost: DecisionCost
) -> RoutingDecision:
    # The thread's CPU time, not wall time: on a busy replica a decision's wall time also
    # counts the GIL waits behind Ray's threads (measured 4-9 ms for ~1 ms of CPU), and
    # those would push a cheap policy off the loop onto threads that only add hand-offs.
    started = time.thread_time()
    try:
        return policy.decide(query, loads)
    finally:
        cost.add(time.thread_time() - started)


class PolicyFactory:
    """Builds the policy a live config asks for, over the router version in service. The
    share window outlives config rebuilds; a new router version starts its own."""

    def __init__(self, router: LoadedRouter | None, order: Sequence[Tier] = ("small", "large")) -> None:
        self._router = router
        self._order = tuple(order)  # the tiers, cheapest first
        self._share: ShareThreshold | None = None
        self._steps: dict[Tier, LoadedRouter] = {}  # step routers in service, by the tier they climb to
        self._categories: dict[str, ShareThreshold] = {}  # live windows of the categories with shares

    @property
    def version(self) -> str:
        return self._router.version if self._router is not None else "baseline"

    @property
    def order(self) -> tuple[Tier, ...]:
        return self._order

    def use(self, router: LoadedRouter | None) -> None:
        if router is not self._router:
            self._router, self._share = router, None  # another model: other scores, new window
            self._categories = {}

    def use_step(self, tier: Tier, router: LoadedRouter | None) -> None:
        """The step router deciding the climb to `tier` (None: the pair's score decides it)."""
        if router is None:
            self._steps.pop(tier, None)
        else:
            self._steps[tier] = router

    @property
    def step_versions(self) -> dict[Tier, str]:
        return {tier: router.version for tier, router in self._steps.items()}

    def build(self, config: RoutingConfig) -> RoutingPolicy:
        if config.policy == "baseline" or self._router is None:
            if config.policy == "learned":
                logger.warning("no router model loaded: routing with the baseline rule")
            return BaselinePolicy(config.baseline)
        window = config.learned.thresholds.window
        if self._share is None or self._share.window != window:
            self._share = ShareThreshold(window, self._router.training_scores)
        steps = {tier: router.score for tier, router in self._steps.items()}
        return LearnedPolicy(
            self._router.score, config.learned, self._share, self._order, steps, self._category_windows(config),
        )

    def _category_windows(self, config: RoutingConfig) -> dict[str, ShareThreshold]:
        """A window per category with shares, kept across rebuilds (dropped with its shares);
        until it holds `min_samples` scores, the training scores stand in for it."""
        assert self._router is not None
        window = config.learned.thresholds.window
        kept = {c: w for c, w in self._categories.items() if c in config.learned.category_shares and w.window == window}
        for category in config.learned.category_shares:
            kept.setdefault(category, ShareThreshold(window, self._router.training_scores))
        self._categories = kept
        return kept


def follow_steps(
    registry: RouterRegistry, tier: Tier, load: Loader, policies: PolicyFactory, router: LiveRouter,
    config: Callable[[], RoutingConfig],
) -> RouterVersions:
    """The active version of `tier`'s step registry, swapped into the policy as it changes
    (none active: the pair's score decides that climb). Step it periodically."""

    def swap() -> None:
        policies.use_step(tier, versions.active)
        router.replace_policy(policies.build(config()), policies.version)
        logger.info("step router for %s: %s", tier, versions.active.version if versions.active else "none")

    versions = RouterVersions(registry, load, None, swap)
    return versions


def follow_versions(
    registry: RouterRegistry, load: Loader, default: LoadedRouter | None, policies: PolicyFactory,
    router: LiveRouter, config: Callable[[], RoutingConfig],
) -> RouterVersions:
    """The registry's versions, each active one swapped into `router` as it changes
    (`default`: served while no version is active). Step it periodically."""

    def swap() -> None:
        policies.use(versions.active)
        router.replace_policy(policies.build(config()), policies.version)
        logger.info("router version %s in service", policies.version)

    versions = RouterVersions(registry, load, default, swap)
    return versions
