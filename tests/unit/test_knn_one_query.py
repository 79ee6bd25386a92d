"""`KnnHistory`'s one-query path (a routing decision) must give the batch pass's features,
with and without the compact index."""

from __future__ import annotations

import numpy as np
import pytest

from router.history import KnnHistory, compact_basis


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _history(rows: int, compact: bool) -> KnnHistory:
    rng = np.random.default_rng(7)
    # Clustered like sentence embeddings: neighbours are close, most rows far.
    centres = rng.normal(size=(40, 128))
    emb = _unit(centres[rng.integers(0, 40, rows)] + 0.6 * rng.normal(size=(rows, 128)))
    basis = compact_basis(emb) if compact else None
    assert (basis is not None) == compact
    return KnnHistory(emb, rng.integers(0, 2, rows).astype(np.float32), rng.random(rows).astype(np.float32),
                      basis=basis)


@pytest.mark.parametrize("rows, compact", [(3000, False), (5000, True)])
def test_one_query_features_equal_the_batch_pass(rows, compact):
    history = _history(rows, compact)
    rng = np.random.default_rng(8)
    queries = _unit(history.embeddings[rng.integers(0, rows, 20)] + 0.3 * rng.normal(size=(20, 128)))
    for query in queries:
        one = history.features(query[None, :])
        batch = history.features(np.vstack([query, query]))[:1]  # two rows: the batch pass
        np.testing.assert_allclose(one, batch, atol=1e-6)


def test_a_small_history_gives_every_feature():
    rows = _unit(np.random.default_rng(1).normal(size=(150, 8)))
    small = KnnHistory(rows, np.ones(150, np.float32), np.zeros(150, np.float32))
    features = small.features(rows[:1])
    assert features.shape == (1, 14)
    np.testing.assert_allclose(features[0, 0], 1.0)  # knn10 small_ok: every row's is 1
