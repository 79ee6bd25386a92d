"""The router canary's figures and verdict (pure)."""

from __future__ import annotations

import pytest

from router.canary import CanaryFigures, RouterCanaryConfig, compare, judge, prompt_key
from router.data import load_graded


def test_compare_counts_agreement_shares_and_graded_quality():
    graded = {"a": (0.0, 1.0), "b": (1.0, 1.0), "c": (1.0, 0.0)}
    rows = [("large", "large", "a"), ("small", "large", "b"), ("large", "small", "c"), ("small", "small", "x")]
    figures = compare(rows, graded)
    assert figures.samples == 4 and figures.agreement == 0.5
    assert figures.active_large_share == 0.5 and figures.candidate_large_share == 0.5
    assert figures.graded == 3
    assert figures.active_quality == (1.0 + 1.0 + 0.0) / 3
    assert figures.candidate_quality == (1.0 + 1.0 + 1.0) / 3
    assert figures.oracle_quality == 1.0


def test_judge_waits_then_promotes_or_rejects():
    config = RouterCanaryConfig(min_samples=10, min_graded=5, max_share_drift=0.2)
    few = CanaryFigures(samples=9, graded=9)
    assert judge(few, config, 0.3).decision == "wait"
    better = CanaryFigures(samples=20, graded=10, agreement=0.4, candidate_large_share=0.35,
                           active_quality=0.6, candidate_quality=0.7)
    assert judge(better, config, 0.3).decision == "promote"
    worse = better.model_copy(update={"candidate_quality": 0.5})
    verdict = judge(worse, config, 0.3)
    assert verdict.decision == "reject" and "gain -0.100" in verdict.reason
    drifted = better.model_copy(update={"candidate_large_share": 0.9})
    assert judge(drifted, config, 0.3).decision == "reject"
    strict = config.model_copy(update={"min_agreement": 0.5})
    assert judge(better, strict, 0.3).decision == "reject"


def test_a_tie_on_quality_promotes_only_at_no_larger_cost():
    config = RouterCanaryConfig(min_samples=10, min_graded=5, max_share_drift=0.5)
    tie = CanaryFigures(samples=20, graded=10, agreement=0.5, active_large_share=0.35,
                        candidate_large_share=0.8, active_quality=0.918, candidate_quality=0.918)
    verdict = judge(tie, config, 0.3)
    assert verdict.decision == "reject" and "larger large share 0.80" in verdict.reason
    cheaper = tie.model_copy(update={"candidate_large_share": 0.3})
    assert judge(cheaper, config, 0.3).decision == "promote"
    no_active_share = tie.model_copy(update={"active_large_share": None})
    assert judge(no_active_share, config, 0.3).decision == "promote"  # nothing to compare cost with
    gained = tie.model_copy(update={"candidate_quality": 0.93})
    assert judge(gained, config, 0.3).decision == "promote"  # a real gain may cost more


def test_graded_outcomes_are_keyed_by_the_routed_text(tmp_path):
    path = tmp_path / "outcomes.csv"
    path.write_text('id,prompt,category,score:small,score:large\n1," Where is my order? ",order,1,0\n2,b,x,,1\n')
    graded = load_graded(path)
    assert graded == {prompt_key("Where is my order?"): (1.0, 0.0)}  # the ungraded row is left out


def test_graded_outcomes_of_an_adapter_target_count_as_the_small_tier(tmp_path):
    # `router collect --target small:auto` grades into `score:small:auto`.
    path = tmp_path / "outcomes.csv"
    path.write_text("prompt,score:small:auto,score:large\nq,0,1\n")
    assert load_graded(path) == {prompt_key("q"): (0.0, 1.0)}
    path.write_text("prompt,score:small:a,score:small:b,score:large\nq,0,1,1\n")
    import pytest
    with pytest.raises(ValueError, match="one score column for the small tier"):
        load_graded(path)


def test_compare_reads_a_step_pair_by_its_own_tiers():
    rows = [("large", "frontier", "a"), ("large", "large", "b"), ("frontier", "frontier", "c")]
    graded = {"a": (0.0, 1.0), "b": (1.0, 1.0), "c": (0.0, 1.0)}  # (large's score, frontier's)
    figures = compare(rows, graded, ("large", "frontier"))
    assert (figures.active_large_share, figures.candidate_large_share) == (pytest.approx(1 / 3), pytest.approx(2 / 3))
    assert (figures.active_quality, figures.candidate_quality) == (pytest.approx(2 / 3), 1.0)
