"""Adapter settings: a section of the gateway's one settings tree (`GATEWAY_ADAPTERS__*`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from model_files.cache import DEFAULT_CACHE_DIR

DEFAULT_REGISTRY = DEFAULT_CACHE_DIR / "adapters"


class AdapterSettings(BaseModel):
    registry_dir: Path = Field(
        DEFAULT_REGISTRY,
        description="Adapter registry (versions + state). Shared storage when replicas span nodes",
    )
    retention_days: int = Field(30, ge=1, description="Rollback window")
    anchor_margin: float = Field(
        0.05, ge=0, description="Largest relative loss increase on stability anchors an adapter may cause"
    )
    auto_select: bool = Field(True, description="Pick a domain adapter for model=auto traffic routed small")
    # The contextual encoder: top-1 0.98 vs 0.86 for the static table on held-out Bitext
    # queries, and it separates other domains; ~14 ms a query, off the event loop.
    selector_embedder: Literal["static", "minilm"] = Field(
        "minilm", description="Embedder of the domain selector (centroids are stored for each)"
    )
    min_similarity: float = Field(
        0.45, ge=-1, le=1, description="Below this cosine similarity to every centroid, the base model answers"
    )
    poll_interval_s: float = Field(0.5, gt=0, description="How often replicas re-read the registry state")
    default_domains: list[str] = Field(
        default_factory=lambda: ["order", "refund", "account", "payment"],
        description="Domains `gateway models prepare` trains default adapters for",
    )
