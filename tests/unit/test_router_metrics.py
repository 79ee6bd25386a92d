import numpy as np
import pytest

from router.features import BoundaryLists, boundary_features, lexical_features, LEXICAL_FEATURES, schema_hash
from router.metrics import apgr, at_threshold, cpt, expected_calibration_error, oracle_scores, quality_curve

RNG = np.random.RandomState(0)
SMALL = (RNG.uniform(size=2000) < 0.6).astype(float)
LARGE = np.maximum(SMALL, (RNG.uniform(size=2000) < 0.5)).astype(float)


def test_random_router_is_about_half_and_oracle_beats_it():
    random = apgr(quality_curve(RNG.uniform(size=2000), SMALL, LARGE))
    oracle = apgr(quality_curve(oracle_scores(SMALL, LARGE), SMALL, LARGE))
    assert 0.4 < random < 0.6 and oracle > 0.8


def test_constant_scores_are_random_tie_breaking():
    curve = quality_curve(np.zeros(2000), SMALL, LARGE)
    assert apgr(curve) == pytest.approx(0.5, abs=1e-9)


def test_curve_endpoints_and_cpt():
    curve = quality_curve(oracle_scores(SMALL, LARGE), SMALL, LARGE)
    assert curve.quality[0] == pytest.approx(SMALL.mean()) and curve.quality[-1] == pytest.approx(LARGE.mean())
    assert cpt(curve, 0.5) < 0.25  # the oracle needs few large calls


def test_at_threshold_counts():
    probs = np.array([0.9, 0.1, 0.8, 0.2])
    small = np.array([0.0, 1.0, 1.0, 0.0])
    large = np.array([1.0, 1.0, 1.0, 1.0])
    report = at_threshold(probs, small, large, 0.5)
    assert report.large_share == 0.5 and report.quality == 0.75
    assert report.routing_accuracy == 0.5 and report.false_escalation_rate == 0.5


@pytest.mark.parametrize("probs, labels, ece", [
    ([0.2] * 10, [0] * 8 + [1] * 2, 0.0),
    ([0.9] * 10, [0] * 10, 0.9),
])
def test_ece(probs, labels, ece):
    assert expected_calibration_error(np.array(probs), np.array(labels, float)) == pytest.approx(ece)


@pytest.mark.parametrize("text, name, value", [
    ("Why? And how?", "questions", 2),
    ("It does not work unless I restart, except when on wifi.", "qualifiers", 2),
    ("It does not work, and I can't log in.", "negations", 2),
    ("Compute 3 + 4 = x", "math_markers", 2),
    ("```def f(): return 1```", "code_markers", 2),
    ("Q\nA. one\nB. two\nC. three", "option_lines", 3),
])
def test_lexical_features(text, name, value):
    assert lexical_features(text)[LEXICAL_FEATURES.index(name)] >= value


def test_boundary_features_use_the_configured_lists():
    lists = BoundaryLists(kb_vocabulary=frozenset({"refund", "order"}), known_products=frozenset({"PRO-100"}),
                          recent_topics=("new pricing",))
    overlap, known, unknown, recent = boundary_features("Refund order PRO-100 and XYZ-9 under new pricing", lists)
    assert overlap > 0 and known == 1 and unknown == 1 and recent == 1


def test_schema_hash_changes_with_names_and_version():
    assert schema_hash(["a", "b"], "1") != schema_hash(["b", "a"], "1") != schema_hash(["a", "b"], "2")
