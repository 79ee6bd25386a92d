"""A pair's own graded outcomes for router tests, and an embedder that needs no model files."""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from router.data import OutcomeData

FACTS = ["what is the capital of", "how many legs does a", "which planet is", "who wrote the play"]
SUPPORT = ["where is my order", "i want a refund for", "cancel my subscription to", "change my delivery address"]


class HashEmbedder:
    """Bag of hashed words: deterministic, no model files, and similar texts stay close."""

    dim = 32

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def own_rows(n: int = 240, seed: int = 0) -> OutcomeData:
    """Support: small (with its adapters) better; facts: large better, mostly."""
    rng = np.random.RandomState(seed)
    prompts, cats, small, large = [], [], [], []
    for i in range(n):
        facts = i % 2 == 0
        prompts.append(f"{(FACTS if facts else SUPPORT)[i % 4]} thing {i}")
        cats.append("facts" if facts else "order")
        noise = rng.uniform(-0.2, 0.2)
        small.append(np.clip((0.3 if facts else 0.8) + noise, 0, 1))
        large.append(np.clip((0.7 if facts else 0.4) - noise, 0, 1))
    s, l = np.asarray(small, np.float32), np.asarray(large, np.float32)
    return OutcomeData(prompts=prompts, small_ok=(s >= 0.5).astype(np.float32), large_ok=(l >= 0.5).astype(np.float32),
                       categories=cats, small_score=s, large_score=l)
