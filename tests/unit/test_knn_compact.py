"""The kNN history's compact index: neighbours searched by cosine in the history's leading
principal directions, the same at training and serving, and kept across save and load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from router.history import KnnHistory, compact_basis
from router.model import EmbedderSpec, RouterModel
from router.train import train_router
from tests.support.own_outcomes import HashEmbedder, own_rows


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def rows() -> np.ndarray:
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(30, 64))
    return _unit(centres[rng.integers(0, 30, 5000)] + 0.5 * rng.normal(size=(5000, 64)))


def test_the_basis_is_orthonormal_and_only_where_it_compacts(rows):
    basis = compact_basis(rows, 16)
    assert basis.shape == (16, 64)
    np.testing.assert_allclose(basis @ basis.T, np.eye(16), atol=1e-5)
    assert compact_basis(rows, 64) is None, "as wide as the embeddings: nothing to compact"
    assert compact_basis(rows[:1000], 16) is None, "a short history searches fast in full"


def test_neighbours_are_the_exact_cosine_neighbours_in_the_basis(rows):
    basis = compact_basis(rows, 16)
    rng = np.random.default_rng(4)
    history = KnnHistory(rows, rng.integers(0, 2, 5000).astype(np.float32), rng.random(5000).astype(np.float32),
                         ks=(10,), basis=basis)
    query = rows[5]
    projected = _unit(rows @ basis.T)
    q = projected[5]
    expected = np.argsort(-(projected @ q))[:10]
    got = history.features(query[None, :])[0]
    assert got[0] == pytest.approx(history.small_ok[expected].mean(), abs=1e-6)
    assert got[1] == pytest.approx(history.large_ok[expected].mean(), abs=1e-6)
    # One query (a decision) and a batch (training) find the same rows.
    np.testing.assert_allclose(got, history.features(np.vstack([query, query]))[0], atol=1e-6)


def test_a_full_history_is_not_compact(rows):
    history = KnnHistory(rows, np.ones(5000, np.float32), np.zeros(5000, np.float32))
    assert not history.compact and history._index is history.embeddings


def test_a_trained_compact_router_scores_the_same_after_save_and_load(tmp_path: Path, monkeypatch):
    monkeypatch.setattr("router.history.COMPACT_MIN_ROWS", 16)  # 240 rows: compacted all the same
    model = train_router(own_rows(), HashEmbedder(), EmbedderSpec(), threads=1, knn_dims=8)
    assert model.history.compact and model.history.basis.shape == (8, HashEmbedder.dim)
    model.save(tmp_path / "m")
    loaded = RouterModel.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.history.basis, model.history.basis)
    texts = ["where is my order thing 3", "what is the capital of thing 8"]
    emb = HashEmbedder().embed(texts)
    np.testing.assert_allclose(loaded.score_embedded(emb, texts), model.score_embedded(emb, texts))
