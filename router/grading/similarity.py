"""How alike an answer and a reference are, in [0, 1]: the seam of semantic matching.

MiniLM cosine is the default (the embedder the router already ships). A cross-encoder
directory (sentence-transformers `CrossEncoder`, e.g. one trained with `retrieval`)
scores the two texts together instead; its sigmoid output is read as the similarity.
Both load their model on first use: building a grader costs nothing until a row needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from text.embedding import Embedder

Pair = tuple[str, str]


class Similarity(Protocol):
    def similarity(self, pairs: Sequence[Pair]) -> list[float]:
        """One similarity per (answer, reference) pair; higher means closer."""
        ...


class EmbeddingSimilarity:
    """Cosine of L2-normalised embeddings, all texts embedded in one batch."""

    def __init__(self, embedder: Embedder | None = None, max_tokens: int = 256) -> None:
        self._embedder = embedder
        self._max_tokens = max_tokens

    def similarity(self, pairs: Sequence[Pair]) -> list[float]:
        if not pairs:
            return []
        vectors = self._model().embed([a for a, _ in pairs] + [b for _, b in pairs])
        left, right = vectors[: len(pairs)], vectors[len(pairs):]
        return np.einsum("ij,ij->i", left, right).astype(float).tolist()

    def _model(self) -> Embedder:
        if self._embedder is None:
            from text.embedding import build_embedder

            self._embedder = build_embedder("minilm", self._max_tokens)
        return self._embedder


class CrossEncoderSimilarity:
    """A cross-encoder directory; scores are its sigmoid outputs, clipped to [0, 1]."""

    def __init__(self, path: Path, max_length: int = 512) -> None:
        self._path = path
        self._max_length = max_length
        self._model: Any = None

    def similarity(self, pairs: Sequence[Pair]) -> list[float]:
        if not pairs:
            return []
        if self._model is None:
            from sentence_transformers.cross_encoder import CrossEncoder

            self._model = CrossEncoder(str(self._path), device="cpu", max_length=self._max_length)
        scores = self._model.predict(list(pairs), batch_size=32, show_progress_bar=False)
        return np.clip(np.asarray(scores, dtype=float).reshape(len(pairs)), 0.0, 1.0).tolist()


def build_similarity(model: str) -> Similarity:
    """`minilm`, or the path of a cross-encoder directory."""
    if model == "minilm":
        return EmbeddingSimilarity()
    path = Path(model)
    if not path.is_dir():
        raise ValueError(f"semantic model must be 'minilm' or a cross-encoder directory, not {model!r}")
    return CrossEncoderSimilarity(path)
