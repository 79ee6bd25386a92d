"""Offline evaluation of a router model on outcome data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel
from sklearn.metrics import roc_auc_score

from router.data import OutcomeData
from router.metrics import (
    RoutingCurve,
    ThresholdReport,
    apgr,
    at_threshold,
    cpt,
    expected_calibration_error,
    oracle_scores,
    quality_curve,
)


class EvalReport(BaseModel):
    rows: int
    small_quality: float
    large_quality: float
    auc_small_not_ok: float
    auc_large_helps: float
    apgr: float
    apgr_random: float
    apgr_oracle: float
    cpt50: float
    cpt80: float
    ece: float
    at_threshold: ThresholdReport


def _auc(labels: NDArray[np.float64], scores: NDArray[np.float64]) -> float:
    return float(roc_auc_score(labels, scores)) if 0 < labels.mean() < 1 else float("nan")


def evaluate(scores: NDArray[np.float64], data: OutcomeData, threshold: float) -> tuple[EvalReport, dict[str, RoutingCurve]]:
    small, large = data.small_ok.astype(np.float64), data.large_ok.astype(np.float64)
    helps = ((small < 0.5) & (large >= 0.5)).astype(np.float64)
    curves = {
        "router": quality_curve(scores, small, large),
        "random": quality_curve(np.zeros_like(scores), small, large),
        "oracle": quality_curve(oracle_scores(small, large), small, large),
    }
    report = EvalReport(
        rows=len(data),
        small_quality=float(small.mean()),
        large_quality=float(large.mean()),
        auc_small_not_ok=_auc(1 - small, scores),
        auc_large_helps=_auc(helps, scores),
        apgr=apgr(curves["router"]),
        apgr_random=apgr(curves["random"]),
        apgr_oracle=apgr(curves["oracle"]),
        cpt50=cpt(curves["router"], 0.5),
        cpt80=cpt(curves["router"], 0.8),
        ece=expected_calibration_error(np.clip(scores, 0, 1), helps),
        at_threshold=at_threshold(scores, small, large, threshold),
    )
    return report, curves


def plot_curves(curves: dict[str, RoutingCurve], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    styles = {"router": "-", "random": "--", "oracle": ":"}
    for name, curve in curves.items():
        ax.plot(curve.share, curve.quality, styles.get(name, "-"), label=name)
    ax.set_xlabel("share of queries sent to the large model")
    ax.set_ylabel("quality (mean correctness)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
