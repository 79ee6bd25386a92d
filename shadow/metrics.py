"""Prometheus metrics of shadow traffic, the answer journal, adapter canaries and feedback,
on the gateway's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class ShadowMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.shadow_requests = Counter(
            "gateway_shadow_requests", "Shadow calls by target kind (large, small, adapter, "
            "candidate) and outcome (stored, failed)", ["target", "outcome"], registry=r,
        )
        self.shadow_dropped_jobs = Counter(
            "gateway_shadow_dropped", "Shadow jobs dropped because their queue was full "
            "(mirror: shadow calls; journal: answers recorded for feedback)", ["queue"], registry=r,
        )
        self.shadow_agreement = Histogram(
            "gateway_shadow_agreement", "Agreement of a shadow answer with the answer it is compared to",
            ["primary", "target"], buckets=tuple(i / 20 for i in range(1, 21)), registry=r,
        )
        self.shadow_latency = Histogram(
            "gateway_shadow_latency_seconds", "Latency of shadow calls", ["target"],
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.canary_decisions = Counter(
            "gateway_canary_decisions", "Automatic canary decisions (reject, pass, rollback) per domain",
            ["domain", "decision"], registry=r,
        )
        self.feedback = Counter(
            "gateway_feedback", "Feedback ratings by tier, adapter version and category (a known one, "
            "else \"other\") (negative rate = rating=\"-1\" / all)",
            ["tier", "adapter", "category", "rating"], registry=r,
        )
        self.feedback_match = Histogram(
            "gateway_feedback_match", "Agreement of the gateway's draft with the text actually sent",
            ["tier", "adapter", "category"], buckets=tuple(i / 20 for i in range(1, 21)), registry=r,
        )

    def shadow_outcome(self, target: str, outcome: str) -> None:
        self.shadow_requests.labels(target, outcome).inc()

    def shadow_pair(self, primary_tier: str, target: str, agreement: float, latency_s: float) -> None:
        self.shadow_agreement.labels(primary_tier, target).observe(agreement)
        self.shadow_latency.labels(target).observe(latency_s)

    def shadow_dropped(self, queue: str) -> None:
        self.shadow_dropped_jobs.labels(queue).inc()

    def canary_decision(self, domain: str, decision: str) -> None:
        self.canary_decisions.labels(domain, decision).inc()
