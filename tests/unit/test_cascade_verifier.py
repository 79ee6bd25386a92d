"""The cascade's learned verifier: fitted on planted signals, stored as JSON, scored alike."""

import numpy as np
import pandas as pd
import pytest

from cascade.verifier import FEATURES, VerifierInput, fit_verifier, load_verifier, save_verifier
from cascade.verifier_data import TrainingRows


def planted(n=400, seed=0):
    """The upper answer is better exactly when the cheap answer's mean logprob is low."""
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(n, len(FEATURES)))
    numbers[rng.random((n, len(FEATURES))) < 0.05] = np.nan  # some unknowns
    label = (np.nan_to_num(numbers[:, 0]) < -0.5).astype(float)
    categories = [("refund", "order", None)[i % 3] for i in range(n)]
    return numbers, categories, label


def test_it_learns_the_planted_signal_and_survives_the_json_round_trip(tmp_path):
    numbers, categories, label = planted()
    model = fit_verifier(numbers, categories, label)
    unsure = model.probability(VerifierInput(mean_logprob=-2.0, category="refund"))
    sure = model.probability(VerifierInput(mean_logprob=1.0, category="order"))
    assert unsure > 0.8 and sure < 0.2
    save_verifier(model, tmp_path / "v.json")
    loaded = load_verifier(tmp_path / "v.json")
    assert loaded.probability(VerifierInput(mean_logprob=-2.0, category="billing")) == pytest.approx(
        model.probability(VerifierInput(mean_logprob=-2.0, category="billing")))  # unseen category: no level


def test_a_file_that_is_not_a_verifier_of_these_features_is_refused(tmp_path):
    numbers, categories, label = planted()
    model = fit_verifier(numbers, categories, label)
    other = model.model_dump()
    other["features"] = ["mean_logprob"]
    (tmp_path / "other.json").write_text(pd.Series([0]).to_json())  # not even an object of ours
    with pytest.raises(ValueError):
        load_verifier(tmp_path / "other.json")
    with pytest.raises(ValueError, match="features"):
        type(model).model_validate(other)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 1_000_001)
    with pytest.raises(ValueError, match="larger"):
        load_verifier(big)


def test_one_outcome_only_is_refused():
    numbers, categories, _ = planted()
    with pytest.raises(ValueError, match="both outcomes"):
        fit_verifier(numbers, categories, np.zeros(len(numbers)))


def test_training_rows_read_the_cheap_tiers_signals_and_label_the_escalation_gain():
    frame = pd.DataFrame({
        "prompt": ["a", "b", "c"], "category": ["Refund", None, "order"],
        "lp_mean:small:auto": [-0.1, -2.0, -0.5], "lp_min:small:auto": [-1, -5, -2],
        "lp_margin:small:auto": [3, 0.1, 1], "tokens:small:auto": [5, 9, 7], "answer_chars:small:auto": [20, 40, 30],
        "score:small:auto": [1.0, 0.0, None], "score:large": [0.0, 1.0, 1.0],
    })
    rows = TrainingRows(frame, "small:auto", "large")
    assert len(rows) == 2 and rows.categories == ["refund", None]  # the ungraded row dropped
    assert rows.labels("upper_better").tolist() == [0.0, 1.0] and rows.labels("acceptable").tolist() == [1.0, 0.0]
    numbers = rows.numbers([0.2, 0.7])
    assert numbers.shape == (2, len(FEATURES)) and numbers[1, -1] == 0.7 and numbers[1, 0] == -2.0
    with pytest.raises(ValueError, match="score:frontier"):
        TrainingRows(frame, "small:auto", "frontier")
