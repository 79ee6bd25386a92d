"""Offline retrieval evaluation: recall@1, recall@5, MRR@10, NDCG@10 per stage.

Queries are labelled with the article that answers them; a ranking of chunks becomes a
ranking of articles (first occurrence), so an article with three sections is not
counted three times.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Callable, Sequence

from pydantic import BaseModel

from retrieval.support_kb import LabelledQuery

Ranker = Callable[[str], list[str]]  # query -> doc ids of the ranked chunks, best first


class StageScore(BaseModel):
    stage: str
    recall_at_1: float
    recall_at_5: float
    mrr_at_10: float
    ndcg_at_10: float
    latency_ms_p50: float
    latency_ms_p95: float
    queries: int


def article_ranking(doc_ids: Sequence[str]) -> list[str]:
    seen: list[str] = []
    for doc_id in doc_ids:
        if doc_id not in seen:
            seen.append(doc_id)
    return seen


def rank_of(ranking: Sequence[str], gold: str) -> int | None:
    """1-based rank of the gold article, or None when it is absent."""
    return ranking.index(gold) + 1 if gold in ranking else None


def score_stage(stage: str, ranker: Ranker, queries: Sequence[LabelledQuery]) -> StageScore:
    ranks: list[int | None] = []
    latencies: list[float] = []
    for labelled in queries:
        started = time.perf_counter()
        ranking = article_ranking(ranker(labelled.query))
        latencies.append((time.perf_counter() - started) * 1000)
        ranks.append(rank_of(ranking, labelled.doc_id))
    n = len(ranks)
    return StageScore(
        stage=stage,
        recall_at_1=sum(1 for r in ranks if r == 1) / n,
        recall_at_5=sum(1 for r in ranks if r is not None and r <= 5) / n,
        mrr_at_10=sum(1 / r for r in ranks if r is not None and r <= 10) / n,
        # One relevant article per query: the ideal DCG is 1.
        ndcg_at_10=sum(1 / math.log2(r + 1) for r in ranks if r is not None and r <= 10) / n,
        latency_ms_p50=statistics.median(latencies),
        latency_ms_p95=_quantile(latencies, 0.95),
        queries=n,
    )


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def table(scores: Sequence[StageScore]) -> str:
    lines = [
        "| stage | recall@1 | recall@5 | MRR@10 | NDCG@10 | latency p50 ms | p95 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in scores:
        lines.append(
            f"| {s.stage} | {s.recall_at_1:.3f} | {s.recall_at_5:.3f} | {s.mrr_at_10:.3f} | "
            f"{s.ndcg_at_10:.3f} | {s.latency_ms_p50:.1f} | {s.latency_ms_p95:.1f} |"
        )
    return "\n".join(lines)
