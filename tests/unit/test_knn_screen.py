"""`KnnHistory`'s one-query path (a routing decision) screens candidates with a float16
copy and ranks them in float32: the features must be the full float32 pass's."""

from __future__ import annotations

import numpy as np
import pytest

from router.history import KnnHistory


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def history() -> KnnHistory:
    rng = np.random.default_rng(7)
    # Clustered like sentence embeddings: neighbours are close, most rows far.
    centres = rng.normal(size=(40, 48))
    rows = _unit(centres[rng.integers(0, 40, 3000)] + 0.6 * rng.normal(size=(3000, 48)))
    return KnnHistory(rows, rng.integers(0, 2, 3000).astype(np.float32), rng.random(3000).astype(np.float32))


def test_one_query_features_equal_the_full_pass(history):
    rng = np.random.default_rng(8)
    queries = _unit(history.embeddings[rng.integers(0, 3000, 50)] + 0.3 * rng.normal(size=(50, 48)))
    screened = [history._screened(q) for q in queries]
    assert sum(s is not None for s in screened) >= 45  # the screen decides almost always
    for query in queries:
        one = history.features(query[None, :])
        full = history.features(np.vstack([query, query]))[:1]  # two rows: the float32 pass
        np.testing.assert_allclose(one, full, atol=1e-6)


def test_a_query_that_is_not_a_unit_vector_takes_the_full_pass(history):
    query = 3 * history.embeddings[:1]
    assert history._screened(query[0]) is None
    np.testing.assert_allclose(history.features(query), history.features(np.vstack([query, query]))[:1])


def test_a_history_too_small_to_screen_takes_the_full_pass():
    rows = _unit(np.random.default_rng(1).normal(size=(150, 8)))
    small = KnnHistory(rows, np.ones(150, np.float32), np.zeros(150, np.float32))
    assert small._screened(rows[0]) is None
    assert small.features(rows[:1]).shape == (1, 14)


@pytest.mark.parametrize("screen", [True, False])
def test_either_timed_path_gives_the_full_pass_features(history, screen):
    history._screen = screen  # what the first query's timing chose
    query = history.embeddings[3]
    np.testing.assert_allclose(
        history.features(query[None, :]), history.features(np.vstack([query, query]))[:1], atol=1e-6
    )


def test_the_paths_are_timed_once_on_the_first_query(history, monkeypatch):
    timed = []
    monkeypatch.setattr(KnnHistory, "_fastest", lambda self, q: timed.append(1) or False)
    for row in history.embeddings[:3]:
        history.features(row[None, :])
    assert timed == [1] and history._screen is False
