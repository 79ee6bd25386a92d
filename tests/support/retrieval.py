"""Small in-process stand-ins for the retrieval seams: a bag-of-words embedder and a
scripted reranker. Tests of gateway logic only; the real ones are tested end to end."""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import datetime, timezone
from typing import Callable, Sequence

import numpy as np

from retrieval.documents import Document, Section
from retrieval.first_stage import FirstStage
from retrieval.reranker import Reranking
from retrieval.store import KnowledgeStore


class WordEmbedder:
    """Hashed bag of words, L2-normalised: cosine = word overlap. Counts its calls."""

    dim = 64

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded += list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


class ScriptedReranker:
    """Scores passages by `score(passage)` after `delay_s`; `fail` raises instead."""

    def __init__(self, score: Callable[[str], float], delay_s: float = 0.0, fail: bool = False) -> None:
        self.score = score
        self.delay_s = delay_s
        self.fail = fail
        self.calls = 0
        self.cancelled = 0

    async def rerank(self, query: str, passages: Sequence[str]) -> Reranking:
        self.calls += 1
        try:
            await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.fail:
            raise RuntimeError("reranker down (injected)")
        return Reranking(scores=[self.score(p) for p in passages], latency_ms=self.delay_s * 1000)


DATE = datetime(2025, 1, 1, tzinfo=timezone.utc)

ARTICLES = [
    Document(id="refund_policy", title="Refund policy", last_modified=DATE, sections=[
        Section(heading="Eligibility", text="A refund is possible within 30 days of purchase for unused items."),
    ]),
    Document(id="track_refund", title="Track a refund", last_modified=DATE, sections=[
        Section(heading="Status", text="Refund status shows in your account under payments; refunds take 5 days."),
    ]),
    Document(id="cancel_order", title="Cancel an order", last_modified=DATE, sections=[
        Section(heading="Before shipping", text="Open the order and press cancel before it ships."),
    ]),
    Document(id="reset_password", title="Reset your password", last_modified=DATE, sections=[
        Section(heading="Steps", text="Use the forgot password link on the sign-in page."),
    ]),
]


def first_stage(tmp_path, documents: Sequence[Document] = ARTICLES) -> FirstStage:
    embedder = WordEmbedder()
    store = KnowledgeStore(tmp_path / "kb.sqlite")
    store.ingest(documents, embedder, "words")
    chunks, vectors, _ = store.load()
    return FirstStage(chunks, vectors, embedder)
