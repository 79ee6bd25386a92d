"""How much two answers to the same request agree, in [0, 1]."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from text.embedding import Embedder


class Agreement(Protocol):
    def score(self, a: str, b: str) -> float: ...


class EmbeddingAgreement:
    """Cosine of the two answers' sentence embeddings (contextual MiniLM), floored at 0.

    Meaning, not wording: two correct answers phrased differently score high, an answer
    to another question scores low. Runs in the shadow worker, never on the primary path.
    """

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    def score(self, a: str, b: str) -> float:
        if not a.strip() or not b.strip():
            return 1.0 if a.strip() == b.strip() else 0.0
        vectors = self._embedder.embed([a, b])
        return float(max(0.0, min(1.0, float(np.dot(vectors[0], vectors[1])))))
