"""Field-weighted BM25 (bm25s): a title match counts `title_weight` times a body match.

Plain BM25 over title + body scores "password reset" the same in an article titled
"Password reset" as in one that mentions it in passing (design note: separate fields,
the title weighted highest).
"""

from __future__ import annotations

from typing import Sequence

import bm25s
import numpy as np
import Stemmer
from numpy.typing import NDArray

from retrieval.documents import Chunk


class FieldBM25:
    def __init__(self, chunks: Sequence[Chunk], title_weight: float = 2.0) -> None:
        self._stemmer = Stemmer.Stemmer("english")
        self._title_weight = title_weight
        self._title = self._index([f"{c.title} {c.section}" for c in chunks])
        self._body = self._index([c.text for c in chunks])
        self._size = len(chunks)

    def scores(self, query: str) -> NDArray[np.float32]:
        """One score per chunk (0 where no query term occurs)."""
        tokens = self._tokens(query)
        if not tokens or not self._size:
            return np.zeros(self._size, dtype=np.float32)
        title = self._title.get_scores(tokens)
        body = self._body.get_scores(tokens)
        return (self._title_weight * title + body).astype(np.float32)

    def _index(self, texts: list[str]) -> bm25s.BM25:
        index = bm25s.BM25()
        if texts:
            # Empty fields would leave no vocabulary: a placeholder keeps bm25s happy.
            texts = [t if t.strip() else "_" for t in texts]
            index.index(bm25s.tokenize(texts, stemmer=self._stemmer, show_progress=False), show_progress=False)
        return index

    def _tokens(self, text: str) -> list[str]:
        tokens = bm25s.tokenize([text], stemmer=self._stemmer, return_ids=False, show_progress=False)
        return list(tokens[0]) if tokens else []
