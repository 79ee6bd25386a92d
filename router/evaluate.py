"""Offline evaluation of a router model on outcome data.

Quality is the mean grade in [0, 1] (the share of acceptable answers when grades are 0/1).
"Large better" is the large tier scoring strictly higher on a query: what escalating it
gains. The router's figures at a large share route the top `share` of the rows by score
to large, as a share threshold does on live traffic.

Where the large tier is not better on average, PGR-based figures (APGR, CPT) are None:
progress towards a tier that is not better is undefined. AUC(large better), quality at
the share and the oracle's still say how well the router picks the queries to escalate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, Field

from router.data import OutcomeData
from router.metrics import (
    RoutingCurve,
    ThresholdReport,
    apgr,
    at_threshold,
    auc,
    cpt,
    expected_calibration_error,
    large_fraction,
    oracle_quality_at_share,
    oracle_scores,
    quality_at_share,
    quality_curve,
)

Floats = NDArray[np.float64]
Tier = Literal["small", "large"]
SHARE_GRID = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
UNCATEGORISED = "(none)"


class CategoryReport(BaseModel):
    rows: int
    small_quality: float
    large_quality: float
    large_better_share: float = Field(description="Rows where large scored strictly higher")
    quality_at_share: float = Field(description="This category's quality when the router sends the top share of all rows")
    oracle_quality_at_share: float
    large_share: float = Field(description="Part of this category the router sends to large at the share cut")
    router_picks: Tier = Field(description="The tier the router sends most of this category to")
    better_tier: Tier | Literal["equal"] = Field(description="The tier with the higher mean quality here")
    quality_by_share: dict[str, float] = Field(description="Quality here at each overall large share")


class EvalReport(BaseModel):
    rows: int
    ungraded_rows: int = Field(0, description="Rows of the data left out: a tier's grade was empty")
    small_quality: float
    large_quality: float
    large_better_on_average: bool
    auc_small_not_ok: float
    auc_large_helps: float
    auc_large_better: float = Field(description="AUC of the score for 'large scored strictly higher'")
    apgr: float | None
    apgr_random: float | None
    apgr_oracle: float | None
    cpt50: float | None
    cpt80: float | None
    ece: float
    share: float
    quality_at_share: float
    random_quality_at_share: float
    oracle_quality_at_share: float
    at_threshold: ThresholdReport
    per_category: dict[str, CategoryReport] = Field(default_factory=dict)


def evaluate(
    scores: Floats, data: OutcomeData, threshold: float, share: float = 0.3
) -> tuple[EvalReport, dict[str, RoutingCurve]]:
    small, large = data.small.astype(np.float64), data.large.astype(np.float64)
    better = data.large_better.astype(np.float64)
    helps = ((data.small_ok < 0.5) & (data.large_ok >= 0.5)).astype(np.float64)
    curves = {
        "router": quality_curve(scores, small, large),
        "random": quality_curve(np.zeros_like(scores), small, large),
        "oracle": quality_curve(oracle_scores(small, large), small, large),
    }
    defined = bool(large.mean() > small.mean())
    report = EvalReport(
        rows=len(data),
        ungraded_rows=data.ungraded,
        small_quality=float(small.mean()),
        large_quality=float(large.mean()),
        large_better_on_average=defined,
        auc_small_not_ok=auc(1 - data.small_ok.astype(np.float64), scores),
        auc_large_helps=auc(helps, scores),
        auc_large_better=auc(better, scores),
        apgr=apgr(curves["router"]) if defined else None,
        apgr_random=apgr(curves["random"]) if defined else None,
        apgr_oracle=apgr(curves["oracle"]) if defined else None,
        cpt50=cpt(curves["router"], 0.5) if defined else None,
        cpt80=cpt(curves["router"], 0.8) if defined else None,
        ece=expected_calibration_error(np.clip(scores, 0, 1), better),
        share=share,
        quality_at_share=quality_at_share(scores, small, large, share),
        random_quality_at_share=float(small.mean() + share * (large.mean() - small.mean())),
        oracle_quality_at_share=oracle_quality_at_share(small, large, share),
        at_threshold=at_threshold(scores, small, large, threshold),
        per_category=per_category(scores, data, share),
    )
    return report, curves


def per_category(scores: Floats, data: OutcomeData, share: float) -> dict[str, CategoryReport]:
    """Each category's figures under the overall cut (the router ranks all rows together,
    as live traffic mixes them). Empty when the data names no category."""
    names = [c if c is not None else UNCATEGORISED for c in data.categories]
    if set(names) <= {UNCATEGORISED}:
        return {}
    sent = {x: large_fraction(scores, x) for x in sorted({*SHARE_GRID, share})}
    return {name: _category(np.array([n == name for n in names]), data, sent, share) for name in sorted(set(names))}


def _category(mask: NDArray[np.bool_], data: OutcomeData, sent: dict[float, Floats], share: float) -> CategoryReport:
    small, large = data.small[mask].astype(np.float64), data.large[mask].astype(np.float64)

    def quality(x: float) -> float:
        return float(np.mean(sent[x][mask] * large + (1 - sent[x][mask]) * small))

    large_share = float(sent[share][mask].mean())
    gap = large.mean() - small.mean()
    return CategoryReport(
        rows=int(mask.sum()),
        small_quality=float(small.mean()),
        large_quality=float(large.mean()),
        large_better_share=float((large > small).mean()),
        quality_at_share=quality(share),
        oracle_quality_at_share=oracle_quality_at_share(small, large, share),
        large_share=large_share,
        router_picks="large" if large_share > 0.5 else "small",
        better_tier="large" if gap > 0 else "small" if gap < 0 else "equal",
        quality_by_share={f"{x:.2f}": quality(x) for x in SHARE_GRID},
    )


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
