"""The gate's decision: P(chitchat) + P(no_context) against the category's threshold."""

from __future__ import annotations

import numpy as np
import pytest

from gate.answerability import decide
from gate.evaluate import predicted_labels
from gate.verdict import GateThresholds


def scores(answerable: float, chitchat: float, no_context: float) -> dict:
    return {"answerable": answerable, "chitchat": chitchat, "no_context": no_context}


@pytest.mark.parametrize(("probs", "threshold", "label"), [
    (scores(0.8, 0.15, 0.05), 0.5, "answerable"),
    (scores(0.4, 0.25, 0.35), 0.5, "no_context"),  # neither alone reaches 0.5; together they do
    (scores(0.4, 0.35, 0.25), 0.5, "chitchat"),
    (scores(0.4, 0.35, 0.25), 0.7, "answerable"),
    (scores(0.3, 0.0, 0.7), 0.7, "no_context"),  # at the threshold counts as gated
])
def test_label_from_scores(probs, threshold, label):
    verdict = decide(probs, threshold)
    assert verdict.label == label
    assert verdict.gated == (label != "answerable")
    assert verdict.threshold == threshold
    assert verdict.scores == probs


def test_each_category_gets_its_own_threshold():
    thresholds = GateThresholds(default=0.9, categories={"billing": 0.3})
    probs = scores(0.5, 0.2, 0.3)
    assert decide(probs, thresholds.for_category("billing")).label == "no_context"
    assert decide(probs, thresholds.for_category("shipping")).label == "answerable"
    assert decide(probs, thresholds.for_category(None)).threshold == 0.9


def test_the_vectorised_labels_agree_with_decide():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1, 1, 1], size=200)
    names = ("answerable", "chitchat", "no_context")
    for threshold in (0.3, 0.5, 0.8):
        expected = [decide(scores(*row), threshold).label for row in probs]
        assert [names[k] for k in predicted_labels(probs, threshold)] == expected
