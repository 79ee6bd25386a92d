"""Cascade strategies on held-out rows: the quality-cost curve of routing, cascading and both, the
quality at a share, the envelope's area, and the cascade + routing split chosen on training rows."""

from __future__ import annotations

import numpy as np
import pytest

from cascade.evaluate import (
    GAIN_FORMS, Costs, Rows, auc_quality_cost, cascade_only, cascade_routing, category_codes,
    choose_gain_form, choose_split, envelope, escalation_value, quality_at_share, route_only, serve,
    summarise, verifier_confidence, verifier_features,
)

COSTS = Costs()  # small 0.1, large 1.0


def arr(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


# gain (large - small) per row: -1, +1, 0, +1; the router ranks rows 1, 3, 2, 0; the confidence
# (least sure first) rows 1, 0, 2, 3.
ROWS = Rows(small=arr(1, 0, 1, 0), large=arr(0, 1, 1, 1), router=arr(0.1, 0.9, 0.2, 0.5),
            confidence=arr(0.2, 0.1, 0.8, 0.9))


def test_route_only_sends_the_top_router_scores_large_at_the_large_price():
    curve = route_only(ROWS, COSTS)
    assert curve.share.tolist() == [0, 0.25, 0.5, 0.75, 1]
    assert curve.quality.tolist() == [0.5, 0.75, 1.0, 1.0, 0.75]
    assert curve.cost == pytest.approx([0.1, 0.325, 0.55, 0.775, 1.0])
    assert curve.escalated.tolist() == [0] * 5


def test_cascade_only_escalates_the_least_sure_and_pays_both_tiers():
    curve = cascade_only(ROWS, COSTS)
    assert curve.quality.tolist() == [0.5, 0.75, 0.5, 0.5, 0.75]
    assert curve.cost == pytest.approx([0.1, 0.35, 0.6, 0.85, 1.1])
    assert curve.routed.tolist() == [0] * 5


def test_quality_at_a_share_between_counts_is_interpolated():
    assert quality_at_share(route_only(ROWS, COSTS), 0.5) == 1.0
    assert quality_at_share(route_only(ROWS, COSTS), 0.3) == pytest.approx(0.75 + 0.2 * 0.25)


def test_the_area_is_the_best_quality_at_each_cost_of_the_grid():
    # grid 0.10, 0.11 .. 1.10: route_only reaches 0.75 from 0.325 (grid points 23..44) and 1.0 from
    # 0.55 (45..100), kept past its dearest point; cascade_only 0.75 from 0.35 (25..100).
    route, cascade = route_only(ROWS, COSTS), cascade_only(ROWS, COSTS)
    assert auc_quality_cost(route, COSTS) == pytest.approx((23 * 0.5 + 22 * 0.75 + 56) / 101)
    assert auc_quality_cost(cascade, COSTS) == pytest.approx((25 * 0.5 + 76 * 0.75) / 101)


def test_the_envelope_keeps_the_best_so_far_and_is_undefined_below_the_cheapest_point():
    best = envelope(cascade_only(ROWS, COSTS), arr(0.05, 0.1, 0.6, 2.0))
    assert np.isnan(best[0]) and best[1:].tolist() == [0.5, 0.75, 0.75]


def test_an_empty_answer_without_logprobs_is_the_least_sure():
    rows = Rows(small=arr(1, 0, 1), large=arr(1, 1, 1), router=arr(0, 0, 0),
                confidence=arr(0.5, np.nan, 0.1))
    assert cascade_only(rows, COSTS).quality[1] == 1.0


def test_serve_refuses_counts_past_the_rows_and_rows_of_unequal_lengths():
    with pytest.raises(ValueError):
        serve(ROWS, np.array([3]), np.array([2]), COSTS)
    with pytest.raises(ValueError):
        Rows(small=arr(1, 0), large=arr(1), router=arr(0, 0), confidence=arr(0, 0))


# Training rows where neither part alone helps at half the rows large: the router's top two are
# a winner (row 0) and a loser (row 2), the two least sure a winner (row 1) and a loser (row 3);
# routing row 0 and escalating the least sure of the rest (row 1) takes both winners.
TRAIN = Rows(small=arr(0, 0, 1, 1), large=arr(1, 1, 0, 0), router=arr(0.9, 0.1, 0.8, 0.2),
             confidence=arr(0.5, 0.1, 0.9, 0.2))


def test_the_split_is_the_training_rows_best_and_ties_go_to_more_routing():
    chosen = choose_split(TRAIN, arr(0, 0.25, 0.5, 0.75, 1.0), COSTS, step=0.25)
    # 0.25: routing row 0 or escalating row 1 gain alike; 0.75: 0, 0.25 and 0.5 tie at quality 0.75.
    assert chosen.tolist() == [0.0, 0.25, 0.25, 0.5, 1.0]


def test_cascade_routing_applies_the_training_split_to_held_out_rows():
    curve = cascade_routing(TRAIN, TRAIN, COSTS, step=0.25)
    assert (curve.routed[2], curve.escalated[2], curve.quality[2]) == (0.25, 0.25, 1.0)
    assert curve.cost[2] == pytest.approx((3 * 0.1 + 2 * 1.0) / 4)
    assert quality_at_share(curve, 0.5) > quality_at_share(route_only(TRAIN, COSTS), 0.5)


def test_held_out_grades_never_move_the_split():
    # Test rows where pure routing would win at half large: the split stays the training rows'.
    test = Rows(small=arr(0, 1, 0, 1), large=arr(1, 0, 1, 0), router=TRAIN.router,
                confidence=TRAIN.confidence)
    curve = cascade_routing(test, TRAIN, COSTS, step=0.25)
    assert curve.routed[2] == 0.25 and curve.quality[2] < route_only(test, COSTS).quality[2]


def test_the_summary_reads_the_curve_at_the_share():
    result = summarise(cascade_routing(TRAIN, TRAIN, COSTS, step=0.25), COSTS, 0.5)
    assert result.quality_at_share == 1.0
    assert (result.routed_rate, result.escalation_rate) == (0.25, 0.25)
    assert result.curve[0] == (0.0, pytest.approx(0.1), 0.5) and len(result.curve) == 21


def test_the_verifier_learns_the_small_answers_signal_out_of_fold():
    rng = np.random.default_rng(0)
    ok = (rng.uniform(size=300) < 0.5).astype(np.float64)
    lp = -1.0 + ok + rng.normal(0, 0.3, 300)
    codes = category_codes(["a", "b", None] * 100, ["a", "b"])
    signals = np.column_stack([lp, rng.normal(size=300)])
    x = verifier_features(signals, rng.uniform(size=300), codes)
    oof, test = verifier_confidence(x[:200], ok[:200], x[200:])
    assert oof.shape == (200,) and test.shape == (100,)
    assert np.corrcoef(oof, ok[:200])[0, 1] > 0.6 and np.corrcoef(test, ok[200:])[0, 1] > 0.6


def test_unknown_categories_have_no_code_and_one_outcome_gives_its_rate():
    assert category_codes(["b", "z", None], ["a", "b"]).tolist()[0] == 1.0
    assert np.isnan(category_codes(["z", None], ["a"])).all()
    x = np.zeros((30, 3))
    oof, test = verifier_confidence(x, np.ones(30), x[:2])
    assert oof.tolist() == [1.0] * 30 and test.tolist() == [1.0, 1.0]


def noisy_signal(rows: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Features whose first signal (and the category) carries the label; the rest is noise."""
    rng = np.random.default_rng(1)
    label = (rng.uniform(size=rows) < 0.3).astype(np.float64)
    codes = category_codes(["a", "b", None] * (rows // 3), ["a", "b"])
    signals = np.column_stack([label * 1.5 + rng.normal(0, 0.5, rows), rng.normal(size=rows)])
    return verifier_features(signals, rng.uniform(size=rows), codes), label


@pytest.mark.parametrize("form", GAIN_FORMS)
def test_every_gain_form_learns_the_signal_out_of_fold(form):
    x, label = noisy_signal()
    oof, test = verifier_confidence(x[:200], label[:200], x[200:], form=form)
    assert ((0 <= oof) & (oof <= 1)).all() and test.shape == (100,)
    assert np.corrcoef(oof, label[:200])[0, 1] > 0.6 and np.corrcoef(test, label[200:])[0, 1] > 0.6


def test_the_logistic_form_takes_missing_signals_and_unseen_categories():
    x, label = noisy_signal()
    x[::7, 0] = np.nan  # a missing signal: the training median
    new = x[:3].copy()
    new[:, -1] = np.nan  # none or unseen: the no-code level
    _, test = verifier_confidence(x, label, new, form="logistic")
    assert np.isfinite(test).all()


def test_an_unknown_form_is_refused():
    with pytest.raises(ValueError, match="unknown verifier form"):
        verifier_confidence(np.zeros((10, 2)), np.ones(10), np.zeros((1, 2)), form="forest")


def test_escalation_value_is_cascade_onlys_mean_quality_up_to_the_share():
    # cascade_only on ROWS: 0.5, 0.75, 0.5 at shares 0, 0.25, 0.5.
    assert escalation_value(ROWS, 0.5) == pytest.approx((0.5 + 0.75 + 0.5) / 3)
    assert escalation_value(ROWS, 0.0) == 0.5


def test_the_gain_form_is_the_one_whose_out_of_fold_gain_ranks_the_winners_first():
    # gain per row -1, +1, 0, +1: "lightgbm" ranks rows 1 and 3 first, "logistic" row 0.
    oof = {"logistic": arr(0.9, 0.1, 0.5, 0.2), "lightgbm": arr(0.1, 0.9, 0.2, 0.8)}
    form, values = choose_gain_form(ROWS, oof, 0.5)
    assert form == "lightgbm" and values["lightgbm"] > values["logistic"]
    tied = {"mean": arr(0.1, 0.9, 0.2, 0.8), "lightgbm": arr(0.1, 0.9, 0.2, 0.8)}
    assert choose_gain_form(ROWS, tied, 0.5)[0] == "lightgbm"  # a tie: the simpler form
    with pytest.raises(ValueError):
        choose_gain_form(ROWS, {"forest": arr(0, 0, 0, 0)}, 0.5)
