"""Which domain adapter answers a query: top-1 cosine similarity to domain centroids.

Pure: the caller embeds the query (with the embedder the centroids were built with)
and hands in the centroids of the adapters that are live right now.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel

Vector = NDArray[np.float32]


class DomainChoice(BaseModel):
    domain: str | None  # None: no centroid is close enough, the base model answers
    similarity: float


class DomainSelector:
    def __init__(self, centroids: Mapping[str, Vector], min_similarity: float) -> None:
        self._domains = sorted(centroids)
        matrix = np.stack([centroids[d] for d in self._domains]) if self._domains else np.zeros((0, 1))
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        self._matrix = (matrix / np.maximum(norms, 1e-12)).astype(np.float32)
        self._min = min_similarity

    def select(self, embedding: Vector) -> DomainChoice:
        if not self._domains:
            return DomainChoice(domain=None, similarity=0.0)
        scores = self._matrix @ embedding.astype(np.float32)
        best = int(np.argmax(scores))
        similarity = float(scores[best])
        return DomainChoice(domain=self._domains[best] if similarity >= self._min else None, similarity=similarity)


def centroid(embeddings: Vector) -> Vector:
    mean = embeddings.mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)
