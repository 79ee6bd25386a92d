"""Unfaithful to grounding: a grounded answer whose sentences the chunks it cited do not
support. Ungrounded answers are not judged.

Each sentence of the answer (citation marks removed, at least `min_words` words) gets
its best support among the sentences of the cited chunks (every chunk of the context
when the answer cites none: small models rarely cite). The answer is flagged when more
than `max_unsupported_share` of its sentences fall below `min_support`.

The scorer is MiniLM cosine (`EmbeddingSupport`). The trained cross-encoder was the
other candidate; on a planted set from the knowledge base (301 sentences: a paraphrase
of the cited chunk's article vs another article; `load_tests/flag_rates.py
--compare-reranker`) MiniLM separates them far better, ROC AUC 0.85 vs 0.60: the
cross-encoder learned (question, passage) relevance on pairs cut at 64 tokens, not
whether a claim is stated by the evidence. At the defaults (0.35, share 0.5) 3.7 % of the
supported planted answers and 55.6 % of the unsupported ones are flagged.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Protocol, Sequence

import numpy as np

from flags.config import FaithfulnessConfig
from flags.sentences import sentences
from flags.types import Answer, Flag, Kind, Passage
from text.embedding import Embedder

_CITATION = re.compile(r"\[([^\[\]\s]+)\]")


class SupportScorer(Protocol):
    def support(self, claims: Sequence[str], evidence: Sequence[str]) -> list[float]:
        """Each claim's best support among the evidence (higher: better supported)."""
        ...


class EmbeddingSupport:
    """Best cosine of each claim with any evidence sentence (L2-normalised embeddings).

    Embeds in small batches: the encoder is shared with the request path (grounding's
    dense stage) under one lock, and a grounded request must never wait for a long call.
    Evidence vectors are kept (LRU): a popular article's chunks ground many answers."""

    def __init__(self, embedder: Embedder, batch: int = 16, cache_size: int = 4096) -> None:
        self._embedder = embedder
        self._batch = batch
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def support(self, claims: Sequence[str], evidence: Sequence[str]) -> list[float]:
        if not claims or not evidence:
            return [0.0] * len(claims)
        similarity = self._embed(claims) @ self._evidence(evidence).T
        return [float(row.max()) for row in similarity]

    def _evidence(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            self._cache.update(zip(missing, self._embed(missing)))
        rows = []
        for text in texts:
            self._cache.move_to_end(text)
            rows.append(self._cache[text])
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return np.vstack(rows)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        parts = [self._embedder.embed(texts[i:i + self._batch]) for i in range(0, len(texts), self._batch)]
        return np.vstack(parts)


def cited(answer: Answer) -> list[Passage]:
    """The passages the answer cites by id, or all of them when it cites none it was given."""
    passages = answer.passages or []
    ids = set(_CITATION.findall(answer.text))
    chosen = [p for p in passages if p.id in ids]
    return chosen or passages


class FaithfulnessEvaluator:
    kind: Kind = "unfaithful"

    def __init__(self, scorer: SupportScorer, config: FaithfulnessConfig) -> None:
        self._scorer = scorer
        self._config = config

    def evaluate(self, answer: Answer) -> list[Flag]:
        if not answer.passages:
            return []
        claims = self._claims(answer.text)
        passages = cited(answer)
        evidence = [s for p in passages for s in sentences(p.text)]
        if not claims or not evidence:
            return []
        scores = self._scorer.support(claims, evidence)
        low = [(score, claim) for score, claim in zip(scores, claims) if score < self._config.min_support]
        if len(low) / len(claims) <= self._config.max_unsupported_share:
            return []
        worst_score, worst = min(low)
        detail = (
            f"{len(low)}/{len(claims)} sentences below {self._config.min_support:g} against "
            f"{', '.join(p.id for p in passages)}; least supported ({worst_score:.2f}): '{worst[:160]}'"
        )
        return [Flag(kind="unfaithful", score=float(np.mean(scores)), detail=detail)]

    def _claims(self, text: str) -> list[str]:
        plain = _CITATION.sub("", text)
        return [s for s in sentences(plain) if len(s.split()) >= self._config.min_words]
