"""Routing quality metrics (RouteLLM's definitions) and calibration error.

Scores are "how much this query needs the large model" (here: P(small answer not
acceptable)). Sort by score, send the top x to large:

    quality(x) = mean correctness of that mix
    PGR(x)     = (quality(x) - quality_small) / (quality_large - quality_small)
    APGR       = area under PGR over x in [0, 1]        (random ≈ 0.5, oracle > 1)
    CPT(p)     = smallest large-call share x with PGR(x) >= p

PGR is only defined where the large tier is better on average (quality_large >
quality_small): for a pair where it is not, report quality at a share, the oracle's, and
AUC(large strictly better) instead. Correctness may be graded: scores in [0, 1] work the
same as 0/1.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel
from sklearn.metrics import roc_auc_score

Floats = NDArray[np.float64]


class RoutingCurve(BaseModel):
    share: list[float]
    quality: list[float]
    pgr: list[float]


def quality_curve(
    scores: Floats, small_ok: Floats, large_ok: Floats, points: int = 1001
) -> RoutingCurve:
    """Quality on a grid of large shares; tied scores are routed as a block, so the
    curve is interpolated between block ends (the expectation under random tie-breaking,
    which neither flatters nor punishes a router that outputs coarse scores)."""
    n = len(scores)
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    gain = (large_ok - small_ok)[order]  # what routing each query large changes
    cumulative = np.concatenate([[0.0], np.cumsum(gain)])
    ends = np.concatenate([[0], np.nonzero(np.diff(ranked) != 0)[0] + 1, [n]])
    share = np.linspace(0.0, 1.0, points)
    quality = np.interp(share, ends / n, (small_ok.sum() + cumulative[ends]) / n)
    q_small, q_large = small_ok.mean(), large_ok.mean()
    span = q_large - q_small
    pgr = (quality - q_small) / span if span != 0 else np.zeros_like(quality)
    return RoutingCurve(share=share.tolist(), quality=quality.tolist(), pgr=pgr.tolist())


def apgr(curve: RoutingCurve) -> float:
    return float(np.trapezoid(curve.pgr, curve.share))


def cpt(curve: RoutingCurve, target: float) -> float:
    pgr = np.asarray(curve.pgr)
    hits = np.nonzero(pgr >= target)[0]
    return float(curve.share[hits[0]]) if len(hits) else 1.0


def large_fraction(scores: Floats, share: float) -> Floats:
    """How much of each query goes to large when the top `share` by score does: 1 above
    the cut, 0 below, and the rest of the share spread evenly over the block of scores
    tied at the cut (the expectation under random tie-breaking, as `quality_curve`)."""
    n = len(scores)
    if n == 0:
        return np.zeros(0)
    needed = share * n
    order = np.argsort(-scores, kind="stable")
    cut = scores[order[min(n - 1, max(0, int(np.ceil(needed)) - 1))]]
    above, tied = scores > cut, scores == cut
    if needed <= 0:
        return np.zeros(n)
    rest = (needed - above.sum()) / tied.sum()
    return np.where(above, 1.0, np.where(tied, np.clip(rest, 0.0, 1.0), 0.0))


def quality_at_share(scores: Floats, small_ok: Floats, large_ok: Floats, share: float) -> float:
    sent = large_fraction(scores, share)
    return float(np.mean(sent * large_ok + (1 - sent) * small_ok)) if len(sent) else float("nan")


def oracle_quality_at_share(small_ok: Floats, large_ok: Floats, share: float) -> float:
    """The best quality sending at most `share` to large: only where it scores higher."""
    n = len(small_ok)
    if n == 0:
        return float("nan")
    gain = np.sort(np.maximum(large_ok - small_ok, 0.0))[::-1]
    budget = share * n  # fractional, as the router's share is (a tied block split evenly)
    whole = min(n, int(np.floor(budget)))
    part = (budget - whole) * gain[whole] if whole < n else 0.0
    return float((small_ok.sum() + gain[:whole].sum() + part) / n)


def auc(labels: Floats, scores: Floats) -> float:
    """ROC AUC of scores for binary labels; NaN when the labels are all one class."""
    return float(roc_auc_score(labels, scores)) if 0 < np.mean(labels) < 1 else float("nan")


def oracle_scores(small_ok: Floats, large_ok: Floats) -> Floats:
    """Perfect knowledge: large only where it helps, never where it hurts."""
    return (large_ok - small_ok).astype(np.float64)


def expected_calibration_error(probs: Floats, labels: Floats, bins: int = 10) -> float:
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(probs, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            error += mask.mean() * abs(probs[mask].mean() - labels[mask].mean())
    return float(error)


class ThresholdReport(BaseModel):
    threshold: float
    large_share: float
    quality: float
    routing_accuracy: float
    false_escalation_rate: float


def at_threshold(
    probs: Floats, small_ok: Floats, large_ok: Floats, threshold: float
) -> ThresholdReport:
    large = probs >= threshold
    needs_large = small_ok < 0.5
    quality = np.where(large, large_ok, small_ok).mean()
    fine_small = ~needs_large
    false_esc = (large & fine_small).sum() / max(1, fine_small.sum())
    return ThresholdReport(
        threshold=threshold,
        large_share=float(large.mean()),
        quality=float(quality),
        routing_accuracy=float((large == needs_large).mean()),
        false_escalation_rate=float(false_esc),
    )
