"""Prometheus metrics of the HTTP edge. One registry per gateway instance (injected)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from adapters.metrics import AdapterMetrics
from router.telemetry import RouterMetrics
from shadow.metrics import LATENCY_BUCKETS, ShadowMetrics
from flags.metrics import FlagMetrics
from retrieval.metrics import GroundingMetrics
from cascade.metrics import CascadeMetrics
from spend.metrics import SpendMetrics
from support.metrics import SupportMetrics



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
        self.shadow = ShadowMetrics(r)  # shadow calls, pairs, the journal, adapter canaries, feedback
        self.grounding = GroundingMetrics(r)  # grounded answers, the reranker, the KB usage journal
        self.flags = FlagMetrics(r)  # checks of sent answers
        self.support = SupportMetrics(r)  # the answerability gate and the per-category rollout
        self.router = RouterMetrics(r)  # routing decisions and the router canary
        self.adapters = AdapterMetrics(r)  # adapter requests, the auto choice, admin changes
        self.spend = SpendMetrics(r)  # what answers cost, saved versus the top tier, budgets
        self.cascade = CascadeMetrics(r)  # cascades kept and escalated

    def background_failures_of(self, task: str) -> None:
        self.background_failures.labels(task).inc()
