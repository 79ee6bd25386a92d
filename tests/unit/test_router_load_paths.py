"""`deployments.ingress.load_routing`: a router model whose feature schema does not match this
code is refused at load (a failed start beats a silent misroute).

One small real model is trained once (`router train` on 120 generated rows, ~10 s); each test
copies it and breaks one field. No Ray runtime: `load_routing` is a plain function.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from deployments.ingress import load_routing
from deployments.settings import RouterSettings
from router.cli import app as router_cli
from router.model import ARTIFACT_FORMAT, SchemaMismatch, expected_schema


def load_scorer(settings: RouterSettings):
    routing = load_routing(settings.model_copy(update={"registry": settings.model_dir.parent / "registry"}))
    return routing.scorer, routing.training_scores


EASY = ["where is my order", "reset my password", "change my email", "track my parcel"]
HARD = ["prove the integral converges except when n is negative",
        "compute the eigenvalues of the matrix unless it is singular",
        "derive the tax liability for a cross-border refund in two currencies"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("router-load")
    rng = random.Random(0)
    lines = ["prompt,s,l"]
    for i in range(120):
        hard = i % 2 == 0
        small_ok = (not hard) if rng.random() > 0.1 else hard
        lines.append(f"\"{rng.choice(HARD if hard else EASY)} ({i})\",{small_ok},1")
    data = tmp / "train.csv"
    data.write_text("\n".join(lines))
    out = tmp / "model"
    result = CliRunner().invoke(router_cli, ["train", "--data", str(data), "--small-col", "s",
                                             "--large-col", "l", "--out", str(out), "--threads", "1"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def model(trained, tmp_path) -> Path:
    """A private copy of the trained artifact, free to break."""
    copy = tmp_path / "model"
    shutil.copytree(trained, copy)
    return copy


def edit_manifest(path: Path, **changes) -> dict:
    manifest = json.loads((path / "manifest.json").read_text())
    original = dict(manifest)
    manifest.update(changes)
    (path / "manifest.json").write_text(json.dumps(manifest))
    return original


def test_matching_model_loads_into_a_working_scorer(model):
    score, quantiles = load_scorer(RouterSettings(model_dir=model, required=True))
    assert score is not None
    value = score("prove the integral converges except when n is negative")
    assert 0.0 <= value <= 1.0
    # The training-score quantiles the learned policy calibrates thresholds with (101 points).
    assert quantiles is not None and len(quantiles) == 101 and quantiles == sorted(quantiles)


def test_mismatched_schema_hash_is_refused_naming_both_schemas(model):
    original = edit_manifest(model, schema_hash="0000000000000000")
    with pytest.raises(SchemaMismatch) as caught:
        load_scorer(RouterSettings(model_dir=model))
    message = str(caught.value)
    assert "0000000000000000" in message  # what the artifact says
    assert original["schema_hash"] in message  # what this gateway builds
    assert str(model) in message and "Retrain it with `router train`" in message


def test_mismatch_is_refused_even_when_the_model_is_optional(model):
    # `required=False` only tolerates a missing model, never a wrong one.
    edit_manifest(model, schema_hash="ffffffffffffffff")
    with pytest.raises(SchemaMismatch):
        load_scorer(RouterSettings(model_dir=model, required=False))


def test_other_artifact_format_is_refused(model):
    edit_manifest(model, format=ARTIFACT_FORMAT + 1)
    with pytest.raises(SchemaMismatch, match=rf"format {ARTIFACT_FORMAT + 1}\).*format {ARTIFACT_FORMAT}\)"):
        load_scorer(RouterSettings(model_dir=model))


def test_manifest_whose_layout_disagrees_with_its_hash_is_refused(model):
    # A hash copied from another layout: the layout fields say 8 dims, the hash says otherwise.
    edit_manifest(model, embedding_dim=8)
    with pytest.raises(SchemaMismatch, match="Retrain"):
        load_scorer(RouterSettings(model_dir=model))


def test_history_with_other_neighbour_counts_is_refused(model):
    hist = dict(np.load(model / "history.npz"))
    hist["ks"] = np.asarray([*hist["ks"].tolist(), 999])
    np.savez(model / "history.npz", **hist)
    with pytest.raises(SchemaMismatch):
        load_scorer(RouterSettings(model_dir=model))


def test_consistent_manifest_for_another_embedder_size_is_refused_by_the_scorer(model):
    # Hash recomputed for 8 dims: the artifact passes the schema check, but the embedder
    # this gateway builds gives another size, and the Scorer refuses it.
    manifest = json.loads((model / "manifest.json").read_text())
    hist = np.load(model / "history.npz")
    ks = tuple(int(k) for k in hist["ks"])
    edit_manifest(model, embedding_dim=8, schema_hash=expected_schema(8, manifest["uses_categories"], ks))
    with pytest.raises(SchemaMismatch, match=r"embedder gives \d+ dimensions; the router model expects 8"):
        load_scorer(RouterSettings(model_dir=model))


def test_missing_model_is_baseline_unless_required(tmp_path):
    assert load_scorer(RouterSettings(model_dir=tmp_path / "none")) == (None, None)
    with pytest.raises(FileNotFoundError, match="no router model at"):
        load_scorer(RouterSettings(model_dir=tmp_path / "none", required=True))


def test_one_query_scores_what_the_batch_path_scores(model):
    """A decision (one row) takes LightGBM's fast single-row path and the float16 kNN
    screen; a batch takes Booster.predict and the float32 pass: the same scores."""
    from router.model import RouterModel
    from text.embedding import build_embedder

    loaded = RouterModel.load(model)
    spec = loaded.manifest.embedder
    texts = EASY + HARD
    emb = build_embedder(spec.kind, spec.max_tokens).embed(texts)
    batch = loaded.score_embedded(emb, texts)
    one_by_one = [loaded.score_embedded(emb[i : i + 1], [t])[0] for i, t in enumerate(texts)]
    assert loaded._single_row  # the fast path was taken
    np.testing.assert_allclose(one_by_one, batch, atol=1e-12)
    # Head by head (this small model's calibrated score is nearly flat; its heads are not).
    stacked = loaded.stack.features(emb)
    a, b = loaded.feature_matrix(emb, texts, stack=stacked)
    whole = loaded.components(a, b, stacked)
    rows = [loaded.components(a[i : i + 1], b[i : i + 1], stacked[i : i + 1]) for i in range(len(texts))]
    for name, values in whole.items():
        np.testing.assert_allclose([r[name][0] for r in rows], values, atol=1e-12)
    assert np.ptp(whole["b_helps"]) > 1e-3  # the heads really tell the texts apart


class _RunsCodeWhenUnpickled:
    """A pickle that leaves a mark when loaded: what a hostile models.joblib would do."""

    def __init__(self, mark: Path) -> None:
        self.mark = mark

    def __reduce__(self):
        return (exec, (f"open({str(self.mark)!r}, 'w').write('unpickled')",))


def test_old_pickled_format_is_refused_without_unpickling(model, tmp_path):
    import pickle

    mark = tmp_path / "mark"
    (model / "models.joblib").write_bytes(pickle.dumps(_RunsCodeWhenUnpickled(mark)))
    edit_manifest(model, format=1)
    with pytest.raises(SchemaMismatch, match=r"format 1\) \(its models are a pickle, never loaded\).*Retrain"):
        load_scorer(RouterSettings(model_dir=model))
    assert not mark.exists()


def test_a_format_2_manifest_over_a_pickle_never_loads_it(model, tmp_path):
    """The current format reads arrays only: a pickle left in the directory is not opened."""
    import pickle

    mark = tmp_path / "mark"
    (model / "models.joblib").write_bytes(pickle.dumps(_RunsCodeWhenUnpickled(mark)))
    score, _ = load_scorer(RouterSettings(model_dir=model, required=True))
    assert 0.0 <= score("where is my order") <= 1.0
    assert not mark.exists()


def test_train_if_stale_retrains_an_old_pickled_artifact(trained, model, tmp_path):
    """What `gateway models prepare` does to a cached format-1 router: retrain, never unpickle."""
    import pickle

    mark = tmp_path / "mark"
    (model / "models.joblib").write_bytes(pickle.dumps(_RunsCodeWhenUnpickled(mark)))
    edit_manifest(model, format=1)
    result = CliRunner().invoke(router_cli, ["train", "--if-stale", "--data", str(trained.parent / "train.csv"),
                                             "--small-col", "s", "--large-col", "l", "--out", str(model),
                                             "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "(re)training" in result.output and "pickle" in result.output
    assert json.loads((model / "manifest.json").read_text())["format"] == ARTIFACT_FORMAT
    assert not (model / "models.joblib").exists() and not mark.exists()
    assert load_scorer(RouterSettings(model_dir=model, required=True))[0] is not None
