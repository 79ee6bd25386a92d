"""Prometheus metrics of live routing and of the router canary, on the registry the app
hands in. (`router.metrics` is the offline quality metrics: APGR, CPT.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from router.decision import RoutingDecision


@dataclass(frozen=True)
class CanaryCounters:
    """What one canary moves: its decisions, its sample size, the scores it dropped."""

    decided: Callable[[str], None]
    samples: Callable[[int], None]
    dropped: Callable[[], None]


class RouterMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.score = Histogram(
            "gateway_routing_score", "Learned router scores of auto requests",
            buckets=tuple(i / 20 for i in range(1, 21)), registry=r,
        )
        self.queue_depth = Gauge(
            "gateway_routing_queue_depth", "Large-tier queue depth seen by the last decision",
            registry=r,
        )
        self.decisions = Counter(
            "gateway_routing_decisions", "Routing decisions by tier and reason",
            ["tier", "reason"], registry=r,
        )
        self.version_decisions = Counter(
            "gateway_router_version_decisions", "auto decisions by the router version that made them and tier",
            ["version", "tier"], registry=r,
        )
        self.canary_decisions = Counter(
            "gateway_router_canary_decisions", "Router canary decisions (promote, reject)",
            ["decision"], registry=r,
        )
        self.canary_samples = Gauge(
            "gateway_router_canary_samples", "Live requests the active and candidate router both scored",
            registry=r,
        )
        self.canary_dropped = Counter(
            "gateway_router_canary_dropped", "Candidate scores skipped because too many were waiting",
            registry=r,
        )

        self.step_canary_decisions = Counter(
            "gateway_router_step_canary_decisions", "Step router canary decisions (promote, reject) by tier",
            ["tier", "decision"], registry=r,
        )
        self.step_canary_samples = Gauge(
            "gateway_router_step_canary_samples", "Live requests that reached the tier below a step and both "
            "step routers (or the active decision and the candidate) judged, by tier", ["tier"], registry=r,
        )

    def canary(self, step: str | None = None) -> CanaryCounters:
        """The counters of the pair's canary (`step` None) or of one step's."""
        if step is None:
            return CanaryCounters(
                lambda d: self.canary_decisions.labels(d).inc(), self.canary_samples.set, self.canary_dropped.inc,
            )
        return CanaryCounters(
            lambda d: self.step_canary_decisions.labels(step, d).inc(), self.step_canary_samples.labels(step).set,
            self.canary_dropped.inc,
        )

    def record(self, decision: RoutingDecision) -> None:
        """A request's final decision (explicit ones too), once per request."""
        self.decisions.labels(decision.tier, decision.reason).inc()
        if decision.router_version is not None:
            self.version_decisions.labels(decision.router_version, decision.tier).inc()
        if decision.score is not None and decision.reason.startswith("learned:"):
            self.score.observe(decision.score)
        if decision.queue_depth is not None:
            self.queue_depth.set(decision.queue_depth)
