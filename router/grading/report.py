"""The grading report: pass rates per target and category, and how two graders agree.

An answer passes at a score of at least 0.5 (as `router train` counts it acceptable).
Where two graders graded the same (row, target), their pass/fail verdicts are compared:
raw agreement and Cohen's kappa (agreement beyond chance; None where only one verdict
occurs, when kappa is undefined).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

from pydantic import BaseModel

from router.grading.protocol import Score

PASS = 0.5
NO_CATEGORY = "(none)"
ALL = "all"

Columns = Mapping[str, Sequence[Score]]  # target -> one score per row


class PassRate(BaseModel):
    graded: int
    ungraded: int
    passed: int
    pass_rate: float | None


class Agreement(BaseModel):
    target: str
    both_graded: int
    raw_agreement: float | None
    kappa: float | None


class GraderReport(BaseModel):
    grader: str
    by_target: dict[str, PassRate]
    by_category: dict[str, dict[str, PassRate]]
    counts: dict[str, int]


class GradingReport(BaseModel):
    graders: list[GraderReport]
    agreement: list[Agreement]
    agreement_between: list[str] = []


def pass_rate(scores: Sequence[Score]) -> PassRate:
    graded = [s for s in scores if s is not None]
    passed = sum(s >= PASS for s in graded)
    rate = passed / len(graded) if graded else None
    return PassRate(graded=len(graded), ungraded=len(scores) - len(graded), passed=passed, pass_rate=rate)


def grader_report(name: str, columns: Columns, categories: Sequence[str | None],
                  counts: Mapping[str, int]) -> GraderReport:
    by_category: dict[str, dict[str, PassRate]] = {}
    if any(c is not None for c in categories):
        for category in sorted({c or NO_CATEGORY for c in categories}):
            rows = [i for i, c in enumerate(categories) if (c or NO_CATEGORY) == category]
            by_category[category] = {t: pass_rate([s[i] for i in rows]) for t, s in columns.items()}
    return GraderReport(grader=name, by_target={t: pass_rate(s) for t, s in columns.items()},
                        by_category=by_category, counts=dict(counts))


def agreement(target: str, first: Sequence[Score], second: Sequence[Score]) -> Agreement:
    both = [(a >= PASS, b >= PASS) for a, b in zip(first, second) if a is not None and b is not None]
    if not both:
        return Agreement(target=target, both_graded=0, raw_agreement=None, kappa=None)
    left, right = [a for a, _ in both], [b for _, b in both]
    raw = sum(a == b for a, b in both) / len(both)
    return Agreement(target=target, both_graded=len(both), raw_agreement=raw, kappa=_kappa(left, right))


def _kappa(left: list[bool], right: list[bool]) -> float | None:
    if len(set(left) | set(right)) < 2:
        return None  # chance agreement is 1: kappa is 0/0
    from sklearn.metrics import cohen_kappa_score  # here: `router --help` need not load sklearn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(cohen_kappa_score(left, right))


def agreements(first: Columns, second: Columns) -> list[Agreement]:
    """Per shared target, then over all of them together."""
    shared = [t for t in first if t in second]
    rows = [agreement(t, first[t], second[t]) for t in shared]
    pooled_a = [s for t in shared for s in first[t]]
    pooled_b = [s for t in shared for s in second[t]]
    return rows + [agreement(ALL, pooled_a, pooled_b)] if len(shared) > 1 else rows


def _rate(rate: PassRate) -> str:
    return "-" if rate.pass_rate is None else f"{rate.pass_rate:.3f} ({rate.graded})"


def _grader_lines(report: GraderReport) -> list[str]:
    targets = list(report.by_target)
    width = max([len(t) for t in targets] + [len(c) for c in report.by_category] + [8])
    lines = [f"grader {report.grader}", f"{'target':<{width}}  graded  ungraded  passed  pass rate"]
    for target, r in report.by_target.items():
        rate = "-" if r.pass_rate is None else f"{r.pass_rate:.3f}"
        lines.append(f"{target:<{width}}  {r.graded:>6}  {r.ungraded:>8}  {r.passed:>6}  {rate:>9}")
    if report.by_category:
        lines.append("pass rate (graded) by category:")
        lines.append(f"{'category':<{width}}  " + "  ".join(f"{t:>16}" for t in targets))
        for category, rates in report.by_category.items():
            lines.append(f"{category:<{width}}  " + "  ".join(f"{_rate(rates[t]):>16}" for t in targets))
    if report.counts:
        lines.append("counts: " + ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items())))
    return lines


def _agreement_line(a: Agreement) -> str:
    raw = "-" if a.raw_agreement is None else f"{a.raw_agreement:.3f}"
    kappa = "-" if a.kappa is None else f"{a.kappa:.3f}"
    return f"  {a.target}: {a.both_graded} graded both ways, agreement {raw}, kappa {kappa}"


def render(report: GradingReport) -> str:
    lines: list[str] = []
    for grader in report.graders:
        lines += _grader_lines(grader) + [""]
    if report.agreement:
        lines.append(f"agreement ({' vs '.join(report.agreement_between)}, pass = score >= {PASS}):")
        lines += [_agreement_line(a) for a in report.agreement]
    return "\n".join(lines).rstrip() + "\n"
