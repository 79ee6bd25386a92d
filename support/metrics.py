"""Prometheus metrics of the support controls, on the registry the app hands in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from support.config import MODES, Mode

GATE_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25)


class SupportMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.gate_decisions = Counter(
            "gateway_gate_decisions", "Answerability gate decisions by category (a known one, else \"other\") "
            "and label (answerable; chitchat and no_context got the hand-off; error: the gate failed, answered)",
            ["category", "label"], registry=r,
        )
        self.gate_latency = Histogram(
            "gateway_gate_latency_seconds", "Time of one answerability decision (off the event loop)",
            buckets=GATE_BUCKETS, registry=r,
        )
        self.rollout_mode = Gauge(
            "gateway_rollout_mode", "Rollout mode per category: 0 off, 1 draft, 2 auto", ["category"], registry=r,
        )
        self.rollout_changes = Counter(
            "gateway_rollout_changes", "Rollout mode changes made on this replica (admin API, automatic review) "
            "by category, new mode and reason (manual, auto_promote, auto_demote)",
            ["category", "to", "reason"], registry=r,
        )
        self.rollout_requests = Counter(
            "gateway_rollout_requests", "Requests by category and the mode they were served in (off: the "
            "hand-off answered)", ["category", "mode"], registry=r,
        )

    def mode(self, category: str, mode: Mode) -> None:
        self.rollout_mode.labels(category).set(MODES.index(mode))
