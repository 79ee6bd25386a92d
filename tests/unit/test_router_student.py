"""The distilled scorer (router/student.py): trained on the ensemble, served where the pair has
enough own rows, saved and loaded as text and arrays, one query scoring as a batch does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from router.model import RouterModel, EmbedderSpec
from router.student import STUDENT_CALIBRATION_FILE, STUDENT_FILE, choose
from router.train import train_router
from tests.support.own_outcomes import HashEmbedder, own_rows

TEXTS = ["cancel my subscription to thing 3", "what is the capital of thing 8", "i want a refund for thing 5",
         "which planet is thing 10"]  # support (small better), facts (large better) as own_rows words them


@pytest.fixture(scope="module")
def student_model() -> RouterModel:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("router.student.STUDENT_MIN_ROWS", 100)  # 400 rows: served all the same
        return train_router(own_rows(400), HashEmbedder(), EmbedderSpec(), threads=1)


def test_the_choice_is_by_own_rows():
    assert choose(1999, 0.9, min_rows=2000).served == "ensemble"
    assert choose(2000, 0.9, min_rows=2000).served == "student"


def test_the_student_serves_and_follows_the_ensemble(student_model):
    model = student_model
    assert model.manifest.scorer == "student" and model.student is not None
    choice = model.manifest.metrics["scorer_choice"]
    assert choice["served"] == "student" and choice["own_rows"] == 400
    assert choice["fidelity"] > 0.8, "the student learns the ensemble's ranking"
    emb = HashEmbedder().embed(TEXTS)
    served, ensemble = model.score_embedded(emb, TEXTS), model.score_ensemble(emb, TEXTS)
    assert not np.allclose(served, ensemble), "the student scores, not the ensemble"
    # Facts (large better in these rows) above support, as the ensemble ranks them.
    assert min(served[1], served[3]) > max(served[0], served[2])
    assert np.all((served >= 0) & (served <= 1 + 1e-5))


def test_one_query_scores_as_in_a_batch(student_model):
    emb = HashEmbedder().embed(TEXTS)
    batch = student_model.score_embedded(emb, TEXTS, ["order", None, "order", "facts"])
    one = [student_model.score_embedded(emb[i:i + 1], [t], [c])[0]
           for i, (t, c) in enumerate(zip(TEXTS, ["order", None, "order", "facts"]))]
    np.testing.assert_allclose(one, batch, rtol=1e-6)


def test_the_student_is_saved_and_loaded(student_model, tmp_path: Path):
    student_model.save(tmp_path / "m")
    assert (tmp_path / "m" / STUDENT_FILE).exists() and (tmp_path / "m" / STUDENT_CALIBRATION_FILE).exists()
    loaded = RouterModel.load(tmp_path / "m")
    assert loaded.manifest.scorer == "student"
    emb = HashEmbedder().embed(TEXTS)
    np.testing.assert_allclose(loaded.score_embedded(emb, TEXTS), student_model.score_embedded(emb, TEXTS))


def test_few_own_rows_keep_the_ensemble_and_drop_a_stale_student(student_model, tmp_path: Path):
    out = tmp_path / "m"
    student_model.save(out)
    small = train_router(own_rows(240), HashEmbedder(), EmbedderSpec(), threads=1)  # below the 2,000 rows
    assert small.manifest.scorer == "ensemble" and small.student is None
    assert small.manifest.metrics["scorer_choice"]["served"] == "ensemble"
    small.save(out)  # over the student's artifact
    assert not (out / STUDENT_FILE).exists(), "an earlier run's student is not left to be loaded"
    emb = HashEmbedder().embed(TEXTS)
    loaded = RouterModel.load(out)
    np.testing.assert_allclose(loaded.score_embedded(emb, TEXTS), loaded.score_ensemble(emb, TEXTS))


def test_a_student_with_more_trees_than_this_code_grows_is_outdated(student_model, monkeypatch):
    from router.cli import _outdated
    from router.history import COMPACT_DIMS
    from router.student import STUDENT_PARAMS

    assert _outdated(student_model, COMPACT_DIMS) is None
    monkeypatch.setitem(STUDENT_PARAMS, "n_estimators", student_model.student.booster.num_trees() - 1)
    assert "student has" in (_outdated(student_model, COMPACT_DIMS) or "")


def test_fidelity_is_zero_where_a_side_is_constant():
    from router.student import fidelity

    assert fidelity(np.array([0.1, 0.2, 0.3]), np.array([0.5, 0.5, 0.5])) == 0.0
    assert fidelity(np.array([0.1, 0.2, 0.3]), np.array([1.0, 2.0, 3.0])) == pytest.approx(1.0)
