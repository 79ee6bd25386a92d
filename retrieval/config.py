"""Retrieval settings (start-up) and the grounding config (live, `user_config.grounding`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from text.category import normalise_category
from pydantic import BaseModel, ConfigDict, Field, model_validator

from model_files.cache import DEFAULT_CACHE_DIR

DEFAULT_KB = DEFAULT_CACHE_DIR / "kb" / "default.sqlite"
DEFAULT_RERANKER = DEFAULT_CACHE_DIR / "reranker" / "default"

RerankMode = Literal["async", "sync", "off"]


class GroundingConfig(BaseModel):
    """Which requests are grounded, and how the reranker's upgrade works (applied live)."""

    model_config = ConfigDict(extra="forbid")

    domains: list[str] = Field(
        default_factory=lambda: [
            "account", "cancel", "contact", "delivery", "feedback", "invoice", "order", "payment",
            "refund", "shipping", "subscription",
        ],
        description="Grounded by default: requests whose adapter domain or metadata.category is one of "
        "these (a request's `grounding` flag overrides either way)",
    )
    top_k: int = Field(3, ge=1, le=20, description="Chunks put into the prompt")
    candidates: int = Field(20, ge=1, le=100, description="First-stage chunks the cross-encoder reranks")
    rerank: RerankMode = Field(
        "async", description="async: generate at once, upgrade if the reranker disagrees in time; "
        "sync: rerank, then generate; off: first stage only"
    )
    stream_deadline_s: float = Field(
        1.0, ge=0, description="How long a stream holds its first token for the reranker"
    )
    rerank_timeout_s: float = Field(
        5.0, gt=0, description="sync mode: longest wait for the reranker before the first-stage context is used"
    )
    min_relevance: float = Field(
        0.25, ge=-1, le=1, description="Best dense cosine below this = a retrieval failure: no context"
    )

    @model_validator(mode="after")
    def _enough_candidates(self) -> "GroundingConfig":
        if self.candidates < self.top_k:
            raise ValueError(f"candidates ({self.candidates}) must be at least top_k ({self.top_k})")
        self.domains = [normalise_category(d) or d for d in self.domains]
        return self


class RotSettings(BaseModel):
    """Knowledge-base rot (design note 001): what the gateway records of each grounded query,
    and the thresholds of `retrieval review`. Start-up settings, not live config: the
    gateway only records; the thresholds are read by the review command, which runs
    offline from the settings tree."""

    usage: Path = Field(
        DEFAULT_CACHE_DIR / "kb" / "usage.sqlite",
        description="SQLite (WAL) journal of grounded queries: which documents served them, when, per category",
    )
    retention_days: float = Field(
        120.0, gt=0, description="Journal rows older than this are pruned (keep it above window_days)"
    )
    max_rows: int = Field(1_000_000, ge=1, description="Newest grounded queries kept in the journal")
    prune_interval_s: float = Field(600.0, gt=0, description="How often the gateway prunes the journal")
    flush_interval_s: float = Field(1.0, gt=0, description="How often queued usage records are written")
    queue_size: int = Field(10_000, ge=1, description="Usage records waiting to be written; beyond it they are dropped")
    window_days: float = Field(90.0, gt=0, description="Query volume is counted over this window")
    stale_after_days: float = Field(365.0, gt=0, description="A document not modified for this long is stale")
    min_share: float = Field(
        0.005, ge=0, le=1,
        description="A stale document goes on the queue when it served more than this share of grounded queries",
    )
    pair_similarity: float = Field(
        0.6, ge=-1, le=1, description="Chunks of different documents at least this similar (MiniLM cosine) are compared"
    )
    neighbours: int = Field(10, ge=1, description="Most similar chunks each chunk is compared with")
    sentence_similarity: float = Field(
        0.7, ge=-1, le=1,
        description="Sentences aligned across two chunks (MiniLM cosine with their values masked) at least this similar",
    )
    min_category_queries: int = Field(
        20, ge=1, description="A category is judged on its retrieval failure rate from this many grounded queries"
    )
    max_failure_rate: float = Field(
        0.2, ge=0, le=1, description="A category whose retrieval failure rate is above this is on the queue"
    )

    @model_validator(mode="after")
    def _retention_covers_window(self) -> "RotSettings":
        if self.retention_days < self.window_days:
            raise ValueError(
                f"retention_days ({self.retention_days}) must cover window_days ({self.window_days})"
            )
        return self


class RetrievalSettings(BaseModel):
    """Where the knowledge base and the reranker are; how the reranker is deployed."""

    enabled: bool = Field(True, description="Serve grounded answers (needs a built knowledge base)")
    kb: Path = Field(DEFAULT_KB, description="Knowledge base (`retrieval ingest --kb`)")
    kb_source: Path = Field(DEFAULT_CACHE_DIR / "kb" / "support", description="Where setup writes the default KB's articles")
    reranker: Path = Field(
        DEFAULT_RERANKER,
        description="Cross-encoder directory: trained by setup, or any HF cross-encoder directory",
    )
    title_weight: float = Field(2.0, gt=0, description="BM25 weight of a title match vs a body match")
    max_length: int = Field(64, ge=32, description="Cross-encoder tokens per (query, chunk) pair (as trained)")
    reranker_threads: int = Field(1, ge=1, description="Torch threads of a reranker replica")
    reranker_replicas: int = Field(1, ge=1)
    reranker_num_cpus: float = Field(0, ge=0)
    reranker_resources: dict[str, float] = Field(default_factory=dict)
    grounding: GroundingConfig = Field(
        default_factory=GroundingConfig, description="Initial grounding config (live: user_config.grounding)"
    )
    rot: RotSettings = Field(
        default_factory=RotSettings, description="Usage journal and the thresholds of `retrieval review`"
    )
