"""Reciprocal rank fusion: combines rankings by position alone, so BM25's unbounded
scores and cosine similarities need no calibration against each other."""

from __future__ import annotations

from typing import Sequence

RRF_K = 60  # Cormack et al.'s constant: damps the head of each ranking


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], k: int = RRF_K, weights: Sequence[float] | None = None) -> list[tuple[int, float]]:
    """Items (by index) with their fused score, best first; ties keep first-seen order."""
    weights = weights or [1.0] * len(rankings)
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, item in enumerate(ranking):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank + 1)
    return sorted(scores.items(), key=lambda kv: -kv[1])
