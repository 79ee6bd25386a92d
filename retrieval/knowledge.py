"""A loaded knowledge base: the first stage, and the rerank step over its candidates."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from retrieval.first_stage import FirstStage, Hit
from retrieval.reranker import Reranking
from retrieval.store import KnowledgeStore
from text.embedding import Embedder


def open_first_stage(kb: Path, embedder: Embedder, title_weight: float = 2.0) -> FirstStage:
    chunks, vectors, _ = KnowledgeStore(kb).load()
    return FirstStage(chunks, vectors, embedder, title_weight)


def reorder(hits: Sequence[Hit], reranking: Reranking) -> list[Hit]:
    """The candidates by cross-encoder score, best first (stable for ties)."""
    order = sorted(range(len(hits)), key=lambda i: -reranking.scores[i])
    return [Hit(chunk=hits[i].chunk, score=reranking.scores[i]) for i in order]
