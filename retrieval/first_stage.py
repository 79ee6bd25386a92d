"""First-stage retrieval: BM25 and dense rankings over every chunk, fused by RRF."""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
from pydantic import BaseModel

from retrieval.documents import Chunk
from retrieval.fusion import reciprocal_rank_fusion
from retrieval.lexical import FieldBM25
from text.embedding import Embedder, Matrix


class Hit(BaseModel):
    chunk: Chunk
    score: float


class Retrieval(BaseModel):
    """A ranking with what it cost; `relevance` is the best dense cosine (retrieval failure
    when it is below the configured threshold)."""

    hits: list[Hit]
    relevance: float
    bm25_ms: float
    dense_ms: float


class FirstStage:
    def __init__(
        self, chunks: Sequence[Chunk], vectors: Matrix, embedder: Embedder,
        title_weight: float = 2.0, depth: int = 50,
    ) -> None:
        self.chunks = list(chunks)
        self._vectors = vectors
        self._embedder = embedder
        self._bm25 = FieldBM25(self.chunks, title_weight)
        self._depth = depth  # how deep each ranking goes into the fusion

    def bm25(self, query: str, k: int) -> list[Hit]:
        return self._top(self._bm25.scores(query), k)

    def dense(self, query: str, k: int) -> list[Hit]:
        return self._top(self._cosines(query), k)

    def hybrid(self, query: str, k: int) -> Retrieval:
        started = time.perf_counter()
        lexical = self._bm25.scores(query)
        after_bm25 = time.perf_counter()
        cosines = self._cosines(query)
        after_dense = time.perf_counter()
        rankings = [_order(lexical, self._depth, positive_only=True), _order(cosines, self._depth)]
        fused = reciprocal_rank_fusion(rankings)[:k]
        return Retrieval(
            hits=[Hit(chunk=self.chunks[i], score=s) for i, s in fused],
            relevance=float(cosines.max()) if len(cosines) else 0.0,
            bm25_ms=(after_bm25 - started) * 1000, dense_ms=(after_dense - after_bm25) * 1000,
        )

    def _cosines(self, query: str) -> np.ndarray:
        if not self.chunks:
            return np.zeros(0, dtype=np.float32)
        return self._vectors @ self._embedder.embed([query])[0]

    def _top(self, scores: np.ndarray, k: int) -> list[Hit]:
        return [Hit(chunk=self.chunks[i], score=float(scores[i])) for i in _order(scores, k)]


def _order(scores: np.ndarray, k: int, positive_only: bool = False) -> list[int]:
    order = np.argsort(-scores, kind="stable")[:k]
    return [int(i) for i in order if not positive_only or scores[i] > 0]
