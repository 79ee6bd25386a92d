"""Prometheus metrics of the adapters served live: requests, the auto choice, admin
changes. On the registry the app hands in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# The edge's latency buckets (a swap waits on every small-tier replica: seconds).
SWAP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class AdapterMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.requests = Counter(
            "gateway_adapter_requests", "Requests served with a LoRA adapter",
            ["domain", "version"], registry=r,
        )
        self.selection = Counter(
            "gateway_adapter_selection", "Adapter choice for auto traffic routed small "
            "(category hint, embedding selector, or base model)", ["outcome"], registry=r,
        )
        self.similarity = Histogram(
            "gateway_adapter_selector_similarity", "Best cosine similarity to a domain centroid",
            buckets=tuple(i / 10 for i in range(-2, 11)), registry=r,
        )
        self.operations = Counter(
            "gateway_adapter_operations", "Admin adapter operations (load, activate, rollback, "
            "unload, candidate) by outcome", ["operation", "outcome"], registry=r,
        )
        self.swap_seconds = Histogram(
            "gateway_adapter_swap_seconds", "Time from an admin adapter change until every "
            "small-tier replica has applied it", ["operation"], buckets=SWAP_BUCKETS, registry=r,
        )
