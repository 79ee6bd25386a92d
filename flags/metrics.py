"""Prometheus metrics of the answer flags, on the registry the app hands in. The names
keep their `gateway_` prefix: dashboards and alerts read them by it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class FlagMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.answer_flags = Counter(
            "gateway_answer_flags", "Flags raised on served answers by the request's category (a known "
            "one, else \"other\") and kind (promise, tone, pii, unfaithful)", ["category", "kind"], registry=r,
        )
        self.flag_checks = Counter(
            "gateway_flag_checks", "Sampled answers by check outcome: clean, flagged, failed (an evaluator "
            "or the store), dropped (the check queue was full)", ["outcome"], registry=r,
        )
