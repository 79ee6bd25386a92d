"""The grading report: pass rates per target and category, agreement of two graders."""

from __future__ import annotations

import pytest
from sklearn.metrics import cohen_kappa_score

from router.grading.report import (
    GradingReport,
    agreement,
    agreements,
    grader_report,
    pass_rate,
    render,
)


def test_pass_rate_counts_graded_answers_from_half_a_point():
    assert pass_rate([1.0, 0.5, 0.25, None, 0.0]).model_dump() == {
        "graded": 4, "ungraded": 1, "passed": 2, "pass_rate": 0.5}
    assert pass_rate([None]).pass_rate is None


def test_grader_report_per_target_and_category():
    columns = {"small": [1.0, 0.0, 1.0, None], "large": [1.0, 1.0, 1.0, 0.0]}
    report = grader_report("reference", columns, ["math", "math", "billing", None], {"no_answer": 1})
    assert report.by_target["small"].pass_rate == pytest.approx(2 / 3)
    assert report.by_target["large"].pass_rate == 0.75
    assert report.by_category["math"]["small"].pass_rate == 0.5
    assert report.by_category["billing"]["large"].graded == 1
    assert report.by_category["(none)"]["small"].ungraded == 1
    assert grader_report("x", columns, [None] * 4, {}).by_category == {}


def test_kappa_matches_sklearn_on_a_known_case():
    first = [1.0, 1.0, 0.0, 0.0, 1.0, None, 0.8]
    second = [1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.75]  # judge-style scores pass from 0.5
    got = agreement("small", first, second)
    both = [(True, True), (True, False), (False, False), (False, False), (True, True), (True, True)]
    expected = cohen_kappa_score([a for a, _ in both], [b for _, b in both])
    assert got.both_graded == 6
    assert got.raw_agreement == pytest.approx(5 / 6)
    assert got.kappa == pytest.approx(expected)
    assert got.kappa == pytest.approx((5 / 6 - 0.5) / 0.5)  # p_o 5/6; p_e = 4/6*3/6 + 2/6*3/6


def test_kappa_is_none_where_it_is_undefined():
    got = agreement("small", [1.0, 1.0], [1.0, 0.9])
    assert (got.raw_agreement, got.kappa) == (1.0, None)
    assert agreement("small", [None], [1.0]).both_graded == 0


def test_agreements_per_shared_target_and_pooled():
    first = {"small": [1.0, 0.0], "large": [1.0, 1.0], "only_here": [1.0, 1.0]}
    second = {"small": [1.0, 1.0], "large": [1.0, 0.0]}
    rows = agreements(first, second)
    assert [(a.target, a.both_graded) for a in rows] == [("small", 2), ("large", 2), ("all", 4)]
    assert rows[-1].raw_agreement == 0.5


def test_render_shows_rates_counts_and_agreement():
    columns = {"small": [1.0, 0.0], "large": [1.0, None]}
    first = grader_report("reference", columns, ["math", "law"], {"unparseable": 1})
    second = grader_report("human", {"small": [1.0, 1.0]}, ["math", "law"], {})
    report = GradingReport(graders=[first, second], agreement=agreements(columns, {"small": [1.0, 1.0]}),
                           agreement_between=["reference", "human"])
    text = render(report)
    assert "grader reference" in text and "grader human" in text
    assert "0.500" in text and "unparseable 1" in text and "law" in text
    assert "agreement (reference vs human" in text and "small: 2 graded both ways" in text
