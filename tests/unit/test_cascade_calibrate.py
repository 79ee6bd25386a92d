"""Cascade thresholds from graded outcomes: the confidence below which a share escalates, and
the quality served at it; the verdict that compares an answer with it."""

from __future__ import annotations

import pytest

from cascade.calibrate import calibrate, calibration_table, graded_columns, threshold_for_rate
from cascade.config import CascadeConfig
from cascade.verdict import judge
from engines.confidence import AnswerConfidence

CONF = [-2.0, -1.5, -1.0, -0.5, -0.1]
CHEAP = [0, 0, 1, 1, 1]
UPPER = [1, 0, 0, 1, 1]


@pytest.mark.parametrize("rate, threshold, escalated", [(0.0, -2.0, 0.0), (0.4, -1.0, 0.4), (0.6, -0.5, 0.6)])
def test_the_threshold_escalates_the_least_sure_share(rate, threshold, escalated):
    assert threshold_for_rate(CONF, rate) == threshold
    assert calibrate(CONF, CHEAP, UPPER, rate).escalation_rate == pytest.approx(escalated)


def test_everything_escalates_at_rate_one_and_bad_rates_are_refused():
    assert calibrate(CONF, CHEAP, UPPER, 1.0).escalation_rate == 1.0
    with pytest.raises(ValueError):
        threshold_for_rate(CONF, 1.5)
    with pytest.raises(ValueError):
        threshold_for_rate([], 0.3)


def test_quality_serves_the_upper_answer_where_escalated():
    point = calibrate(CONF, CHEAP, UPPER, 0.4)  # rows 0, 1 escalate: upper 1, 0; kept 1, 1, 1
    assert point.quality == pytest.approx(4 / 5) and point.kept_quality == pytest.approx(1.0)


def test_the_table_leaves_out_rows_without_both_grades():
    (point,) = calibration_table([*CONF, -9.0], [*CHEAP, 1], [*UPPER, float("nan")], [0.4])
    assert point.threshold == -1.0 and point.quality == pytest.approx(4 / 5)


def test_columns_are_named_by_signal_and_tiers():
    columns = ["lp_mean:small:auto", "score:small:auto", "score:large"]
    assert graded_columns(columns, "mean_logprob", "small:auto", "large") == tuple(columns)
    with pytest.raises(ValueError, match="lp_margin:small:auto"):
        graded_columns(columns, "mean_margin", "small:auto", "large")


def test_the_verdict_keeps_at_the_threshold_and_escalates_below_it_or_without_logprobs():
    config = CascadeConfig(threshold=-0.5)
    sure = AnswerConfidence(tokens=3, mean_logprob=-0.5, min_logprob=-1.0, mean_margin=None)
    assert not judge(config, sure).escalate
    assert judge(config, sure.model_copy(update={"mean_logprob": -0.51})).escalate
    unknown = judge(config, None)
    assert unknown.escalate and unknown.describe() == "mean_logprob=none"
    margin = judge(CascadeConfig(signal="mean_margin", threshold=1.0), sure)
    assert margin.escalate and margin.value is None  # no alternatives were asked: nothing vouches


def test_config_categories_and_the_wildcard():
    assert CascadeConfig(categories=["refund"]).applies_to("refund")
    assert not CascadeConfig(categories=["refund"]).applies_to(None)
    assert CascadeConfig(categories=["*"]).applies_to(None)
