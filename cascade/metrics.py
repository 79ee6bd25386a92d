"""Prometheus: how many cascades kept the cheap answer and how many escalated, and why."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class CascadeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.outcomes = Counter(
            "gateway_cascade_total",
            "Cascaded requests by the tier that answered first and the verdict on its answer",
            ["first_tier", "outcome", "signal"], registry=registry,
        )
