"""The cross-encoder: scores (query, passage) pairs jointly, which is why it ranks
better than either first-stage scorer and why it is too slow for the whole corpus."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol, Sequence

from pydantic import BaseModel


class Reranking(BaseModel):
    scores: list[float]
    latency_ms: float


class Reranker(Protocol):
    """The seam the gateway calls (a Ray Serve deployment in the app, in-process in tests)."""

    async def rerank(self, query: str, passages: Sequence[str]) -> Reranking: ...


class CrossEncoderScorer:
    """A sentence-transformers `CrossEncoder` directory (trained at setup, or any HF one)."""

    def __init__(self, path: Path | str, max_length: int = 256, threads: int | None = None) -> None:
        import torch
        from sentence_transformers.cross_encoder import CrossEncoder

        if threads:
            torch.set_num_threads(threads)
        self._model = CrossEncoder(str(path), device="cpu", max_length=max_length)
        self._identity = torch.nn.Identity()

    def score(self, query: str, passages: Sequence[str]) -> Reranking:
        started = time.perf_counter()
        if not passages:
            return Reranking(scores=[], latency_ms=0.0)
        # Raw logits: the default sigmoid saturates near 1 for every chunk of the right article.
        scores = self._model.predict(
            [(query, p) for p in passages], batch_size=32, show_progress_bar=False, activation_fn=self._identity
        )
        return Reranking(scores=[float(s) for s in scores], latency_ms=(time.perf_counter() - started) * 1000)
