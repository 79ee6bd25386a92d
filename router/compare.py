"""Two router models evaluated on the same data: side by side, and what changed.

Used to decide whether a retrained model (e.g. one fed shadow labels by the flywheel)
replaces the one in service. Deltas are model − baseline; only metrics that depend on
the model are compared (rows, the two tiers' quality and the random/oracle APGR are
properties of the data, equal for both).
"""

from __future__ import annotations

from pydantic import BaseModel

from router.evaluate import EvalReport
from router.metrics import ThresholdReport


class ThresholdDelta(BaseModel):
    large_share: float
    quality: float
    routing_accuracy: float
    false_escalation_rate: float


class EvalDelta(BaseModel):
    apgr: float
    auc_small_not_ok: float
    auc_large_helps: float
    cpt50: float
    cpt80: float
    ece: float
    at_threshold: ThresholdDelta


def _diff(model: BaseModel, baseline: BaseModel, fields: list[str]) -> dict[str, float]:
    return {name: getattr(model, name) - getattr(baseline, name) for name in fields}


def delta(model: EvalReport, baseline: EvalReport) -> EvalDelta:
    at = _diff(model.at_threshold, baseline.at_threshold, list(ThresholdDelta.model_fields))
    top = [name for name in EvalDelta.model_fields if name != "at_threshold"]
    return EvalDelta(**_diff(model, baseline, top), at_threshold=ThresholdDelta(**at))


def _rows(report: EvalReport) -> list[tuple[str, float]]:
    at: ThresholdReport = report.at_threshold
    suffix = f" @{at.threshold:.3f}"
    return [
        ("APGR", report.apgr), ("AUC (small not ok)", report.auc_small_not_ok),
        ("AUC (large helps)", report.auc_large_helps), ("CPT(50%)", report.cpt50),
        ("CPT(80%)", report.cpt80), ("ECE", report.ece),
        ("large share" + suffix, at.large_share), ("quality" + suffix, at.quality),
        ("routing accuracy" + suffix, at.routing_accuracy),
        ("false escalation" + suffix, at.false_escalation_rate),
    ]


def side_by_side(model: EvalReport, baseline: EvalReport) -> list[str]:
    """Text table: one metric a line, model | baseline | delta."""
    lines = [
        f"rows {model.rows}  small quality {model.small_quality:.3f}  large quality "
        f"{model.large_quality:.3f}  APGR random {model.apgr_random:.3f}, oracle {model.apgr_oracle:.3f}",
        f"{'':<26}{'model':>10}{'baseline':>10}{'delta':>10}",
    ]
    for (label, new), (_, old) in zip(_rows(model), _rows(baseline)):
        lines.append(f"{label:<26}{new:>10.3f}{old:>10.3f}{new - old:>+10.3f}")
    return lines
