"""Two router models evaluated on the same data: side by side, and what changed.

Used to decide whether a retrained model (e.g. one fed shadow labels by the flywheel, or
trained on our own collected outcomes) replaces the one in service. Deltas are model −
baseline; only metrics that depend on the model are compared (rows, the two tiers'
quality, the random/oracle figures are properties of the data, equal for both). A
PGR-based figure is None for both where the large tier is not better on average, and so
is its delta.
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
    apgr: float | None
    auc_small_not_ok: float
    auc_large_helps: float
    auc_large_better: float
    cpt50: float | None
    cpt80: float | None
    ece: float
    quality_at_share: float
    at_threshold: ThresholdDelta


def _diff(model: BaseModel, baseline: BaseModel, fields: list[str]) -> dict[str, float | None]:
    def minus(new: float | None, old: float | None) -> float | None:
        return None if new is None or old is None else new - old

    return {name: minus(getattr(model, name), getattr(baseline, name)) for name in fields}


def delta(model: EvalReport, baseline: EvalReport) -> EvalDelta:
    at = _diff(model.at_threshold, baseline.at_threshold, list(ThresholdDelta.model_fields))
    top = [name for name in EvalDelta.model_fields if name != "at_threshold"]
    return EvalDelta(**_diff(model, baseline, top), at_threshold=ThresholdDelta(**at))


def _rows(report: EvalReport) -> list[tuple[str, float | None]]:
    at: ThresholdReport = report.at_threshold
    suffix = f" @{at.threshold:.3f}"
    return [
        ("APGR", report.apgr), ("AUC (small not ok)", report.auc_small_not_ok),
        ("AUC (large helps)", report.auc_large_helps), ("AUC (large better)", report.auc_large_better),
        (f"quality @{report.share:.0%} large", report.quality_at_share),
        ("CPT(50%)", report.cpt50), ("CPT(80%)", report.cpt80), ("ECE", report.ece),
        ("large share" + suffix, at.large_share), ("quality" + suffix, at.quality),
        ("routing accuracy" + suffix, at.routing_accuracy),
        ("false escalation" + suffix, at.false_escalation_rate),
    ]


def _cell(value: float | None, sign: str = "") -> str:
    return f"{'n/a':>10}" if value is None else f"{value:>{sign}10.3f}"


def data_lines(report: EvalReport) -> list[str]:
    """What the data says whatever the router: the two tiers, and the references at the share."""
    lines = [
        f"rows {report.rows}" + (f" (the data's {report.ungraded_rows} ungraded rows left out)"
                                 if report.ungraded_rows else "")
        + f"  small quality {report.small_quality:.3f}  large quality {report.large_quality:.3f}",
        f"at {report.share:.0%} large: random {report.random_quality_at_share:.3f}, "
        f"oracle {report.oracle_quality_at_share:.3f}",
    ]
    if report.large_better_on_average:
        lines.append(f"APGR random {report.apgr_random:.3f}, oracle {report.apgr_oracle:.3f}")
    else:
        lines.append(
            "the large tier is not better on average here: APGR and CPT are undefined (n/a); "
            "judge by AUC (large better) and quality at the share against the oracle"
        )
    return lines


def side_by_side(model: EvalReport, baseline: EvalReport) -> list[str]:
    """Text table: one metric a line, model | baseline | delta; then the categories."""
    lines = [*data_lines(model), f"{'':<26}{'model':>10}{'baseline':>10}{'delta':>10}"]
    for (label, new), (_, old) in zip(_rows(model), _rows(baseline)):
        change = None if new is None or old is None else new - old
        lines.append(f"{label:<26}{_cell(new)}{_cell(old)}{_cell(change, '+')}")
    return lines + category_lines({"model": model, "baseline": baseline})


def category_lines(reports: dict[str, EvalReport]) -> list[str]:
    """Per category: the tiers' quality, then each router's quality and large share at the
    share cut and the tier it sends most of the category to."""
    first = next(iter(reports.values()))
    if not first.per_category:
        return []
    names = list(reports)
    head = f"{'category':<14}{'rows':>5}{'small':>7}{'large':>7}{'oracle':>7}"
    head += "".join(f"{f'{n} q':>11}{'large%':>7}{'picks':>6}" for n in names)
    lines = [f"per category at {first.share:.0%} large (quality; share sent to large; tier for most):", head]
    for category, row in first.per_category.items():
        line = (f"{category[:14]:<14}{row.rows:>5}{row.small_quality:>7.3f}{row.large_quality:>7.3f}"
                f"{row.oracle_quality_at_share:>7.3f}")
        for report in reports.values():
            mine = report.per_category[category]
            line += f"{mine.quality_at_share:>11.3f}{mine.large_share:>7.0%}{mine.router_picks:>6}"
        lines.append(line)
    return lines


def summary(reports: dict[str, EvalReport], versions: dict[str, str], about: dict[str, object]) -> dict[str, object]:
    """A result file: each headline figure keyed by router name (e.g. "own", "default"),
    beside the data's own references (the oracle, random routing, the two tiers)."""
    first = next(iter(reports.values()))
    return {
        **about,
        "n_heldout": first.rows,
        "ungraded_rows": first.ungraded_rows,
        "versions": versions,
        "small_quality": first.small_quality,
        "large_quality": first.large_quality,
        "large_better_on_average": first.large_better_on_average,
        "auc_large_better": {name: r.auc_large_better for name, r in reports.items()},
        "quality_at_share": {
            **{name: r.quality_at_share for name, r in reports.items()},
            "oracle": first.oracle_quality_at_share, "random": first.random_quality_at_share,
            "share": first.share,
        },
        "apgr": {name: r.apgr for name, r in reports.items()},
        "per_category": {
            category: {
                **row.model_dump(include={"rows", "small_quality", "large_quality", "large_better_share",
                                          "better_tier", "oracle_quality_at_share"}),
                **{name: r.per_category[category].model_dump(
                    include={"quality_at_share", "large_share", "router_picks", "quality_by_share"})
                   for name, r in reports.items()},
            }
            for category, row in first.per_category.items()
        },
        "reports": {name: r.model_dump() for name, r in reports.items()},
    }
