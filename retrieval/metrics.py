"""Prometheus metrics of grounded answers, on the registry the app hands in. The names
keep their `gateway_` prefix: dashboards and alerts read them by it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

RETRIEVAL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class GroundingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.grounded = Counter(
            "gateway_grounded_requests", "Grounded requests by the context they were answered with "
            "(first-stage, reranked, none = retrieval failed) and category (a known one, else \"other\"; "
            "\"\" = none)", ["context", "category"], registry=r,
        )
        self.rerank_outcomes = Counter(
            "gateway_rerank_outcomes", "Cross-encoder outcomes: in_context (its top-1 already in the prompt), upgraded (upgrade rate = "
            "upgraded / all), late (answer final first), deadline_miss (stream), failed", ["outcome"], registry=r,
        )
        self.retrieval_latency = Histogram(
            "gateway_retrieval_latency_seconds", "Retrieval latency per stage (bm25, dense, rerank)",
            ["stage"], buckets=RETRIEVAL_BUCKETS, registry=r,
        )
        self.retrieval_failures = Counter(
            "gateway_retrieval_failures", "Grounded requests answered without context: no chunk above "
            "the relevance threshold (low_relevance), an empty KB, or an error; by category as "
            "gateway_grounded_requests (the KB-rot canary: failures / grounded requests per category)",
            ["reason", "category"], registry=r,
        )
        self.retrieval_usage_dropped = Counter(
            "gateway_retrieval_usage_dropped", "Grounded-query usage records lost (the journal's queue "
            "was full, or writing it failed)", registry=r,
        )
        # One series per chunk: the design note's concentration check (a few chunks taking
        # most retrievals). Bounded by the KB's size.
        self.chunk_retrievals = Counter(
            "gateway_retrieval_chunk", "Times each chunk was put into a prompt", ["chunk"], registry=r,
        )
