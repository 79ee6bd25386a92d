"""Prometheus metrics of the HTTP edge. One registry per gateway instance (injected)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from adapters.metrics import AdapterMetrics
from router.telemetry import RouterMetrics
from flags.metrics import FlagMetrics
from retrieval.metrics import GroundingMetrics
from support.metrics import SupportMetrics

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "gateway_requests", "Requests dispatched to a tier, each counted once when it ends, by "
            "endpoint, tier (the last one tried: a fallback counts under the tier it moved to) and "
            "status (200, 400, 499 client gone, 500, 503)",
            ["endpoint", "tier", "status"], registry=r,
        )
        self.latency = Histogram(
            "gateway_request_latency_seconds", "End-to-end latency, from the first dispatch to a tier "
            "(retries, fallback and a stream's wait for its first token included)",
            ["endpoint", "tier"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.ttft = Histogram(
            "gateway_time_to_first_token_seconds", "Time to first streamed token",
            ["tier"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.tokens = Counter(
            "gateway_tokens", "Tokens counted by the engines", ["tier", "kind"], registry=r
        )
        self.background_failures = Counter(
            "gateway_background_failures", "Failed runs of a background task (pollers, pruners)",
            ["task"], registry=r,
        )
        self.in_flight = Gauge(
            "gateway_in_flight_requests", "Requests being served, per tier", ["tier"], registry=r
        )
        self.config_applied = Counter(
            "gateway_live_config_applied", "Live configs applied", registry=r
        )
        self.config_rejected = Counter(
            "gateway_live_config_rejected", "Invalid live configs rejected (last good kept)",
            registry=r,
        )
        self.retries = Counter(
            "gateway_engine_retries", "Retries of transient tier failures (before the first token)",
            ["tier"], registry=r,
        )
        self.fallbacks = Counter(
            "gateway_fallbacks", "Auto requests moved to another tier because theirs was unavailable",
            ["from_tier", "to_tier"], registry=r,
        )
        self.breaker_state = Gauge(
            "gateway_breaker_state", "Circuit breaker per tier: 0 closed, 1 half-open, 2 open",
            ["tier"], registry=r,
        )
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
        self.grounding = GroundingMetrics(r)  # grounded answers, the reranker, the KB usage journal
        self.flags = FlagMetrics(r)  # checks of sent answers
        self.support = SupportMetrics(r)  # the answerability gate and the per-category rollout
        self.router = RouterMetrics(r)  # routing decisions and the router canary
        self.adapters = AdapterMetrics(r)  # adapter requests, the auto choice, admin changes

    # ---- the shadow service's metrics seam (shadow.service.ShadowMetrics) ----------

    def shadow_outcome(self, target: str, outcome: str) -> None:
        self.shadow_requests.labels(target, outcome).inc()

    def shadow_pair(self, primary_tier: str, target: str, agreement: float, latency_s: float) -> None:
        self.shadow_agreement.labels(primary_tier, target).observe(agreement)
        self.shadow_latency.labels(target).observe(latency_s)

    def shadow_dropped(self, queue: str) -> None:
        self.shadow_dropped_jobs.labels(queue).inc()

    def background_failures_of(self, task: str) -> None:
        self.background_failures.labels(task).inc()

    def canary_decision(self, domain: str, decision: str) -> None:
        self.canary_decisions.labels(domain, decision).inc()
