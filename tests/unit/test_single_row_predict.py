"""LightGBM's fast single-row path gives what Booster.predict gives, row for row."""

from __future__ import annotations

import pickle
import threading

import lightgbm as lgb
import numpy as np
import pytest

from router.single_row import SingleRowPredictor


def _booster(objective: str, rows: int = 400, features: int = 12, seed: int = 0, **extra) -> lgb.Booster:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=rows) > 0).astype(float)
    if objective == "cross_entropy":
        y = np.clip(y * 0.8 + rng.uniform(0, 0.2, rows), 0, 1)  # grades in [0, 1]
    params = {"objective": objective, "num_leaves": 7, "verbose": -1, "num_threads": 1, **extra}
    return lgb.train(params, lgb.Dataset(x, y), num_boost_round=40)


@pytest.mark.parametrize("objective", ["binary", "cross_entropy", "regression"])
def test_each_row_matches_booster_predict(objective):
    booster = _booster(objective)
    fast = SingleRowPredictor(booster)
    rows = np.random.default_rng(1).normal(size=(200, 12)).astype(np.float32)
    expected = booster.predict(rows, num_threads=1)
    got = np.array([fast.predict(row) for row in rows])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert len(np.unique(got)) > 10  # the rows really differ: a constant would not pass


def test_a_row_of_the_wrong_width_is_refused():
    fast = SingleRowPredictor(_booster("binary"))
    with pytest.raises(ValueError, match="12 features"):
        fast.predict(np.zeros(11))


def test_decision_threads_share_one_predictor():
    booster = _booster("binary")
    fast = SingleRowPredictor(booster)
    rows = np.random.default_rng(2).normal(size=(64, 12))
    expected = booster.predict(rows, num_threads=1)
    wrong: list[int] = []

    def work() -> None:
        for _ in range(20):
            for i, row in enumerate(rows):
                if abs(fast.predict(row) - expected[i]) > 1e-12:
                    wrong.append(i)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_it_pickles_by_setting_up_again():
    booster = _booster("regression")
    copy = pickle.loads(pickle.dumps(SingleRowPredictor(booster)))
    row = np.linspace(-1, 1, 12)
    assert copy.predict(row) == pytest.approx(booster.predict(row[None, :])[0], abs=1e-12)
