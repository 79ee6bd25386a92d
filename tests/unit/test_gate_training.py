"""Train a gate on a handful of rows, save, load, classify; refuse what does not fit."""

from __future__ import annotations

import json

import pytest

from gate.answerability import AnswerabilityGate
from gate.data import DataError, load_data
from gate.model import EmbedderSpec, GateModel, SchemaMismatch
from gate.train import TrainingError, train_gate
from gate.verdict import GateThresholds
from tests.support.gate import CHITCHAT, NO_CONTEXT, write_gate_csv
from tests.support.retrieval import WordEmbedder


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gate")
    data = load_data(write_gate_csv(tmp / "gate.csv"), "train")
    model = train_gate(data, WordEmbedder(), EmbedderSpec(), data_digest="d" * 64, split="train", c=10.0)
    model.save(tmp / "model")
    return tmp / "model", data


def test_the_trained_model_round_trips_with_its_manifest(saved):
    path, data = saved
    model = GateModel.load(path)
    manifest = model.manifest
    assert manifest.train_rows == len(data) == 18
    assert manifest.labels == ["answerable", "chitchat", "no_context"]
    assert manifest.embedding_dim == WordEmbedder.dim
    assert len(manifest.feature_names) == WordEmbedder.dim + 13
    assert manifest.metrics["label_counts"] == {"answerable": 6, "chitchat": 6, "no_context": 6}


def test_the_gate_classifies_trained_messages_as_labelled(saved):
    path, _ = saved
    gate = AnswerabilityGate.load(path, WordEmbedder())
    thresholds = GateThresholds(default=0.5)
    verdicts = {text: gate.classify(text, None, thresholds) for text in [*CHITCHAT[:2], *NO_CONTEXT[:2]]}
    assert all(v.gated for v in verdicts.values()), verdicts
    assert abs(sum(verdicts[CHITCHAT[0]].scores.values()) - 1) < 1e-6
    assert not gate.classify("how do I cancel my order 48213", None, thresholds).gated


def test_a_shared_embedding_gives_the_same_verdict(saved):
    path, _ = saved
    gate = AnswerabilityGate.load(path, WordEmbedder())
    thresholds = GateThresholds()
    text = "any update on that"
    assert gate.classify(text, None, thresholds, embedding=gate.embed(text)) == gate.classify(text, None, thresholds)


def test_a_manifest_of_another_schema_is_refused(saved, tmp_path):
    path, _ = saved
    copy = tmp_path / "model"
    GateModel.load(path).save(copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["schema_hash"] = "0" * 16
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SchemaMismatch, match="retrain"):
        GateModel.load(copy)


def test_an_embedder_of_another_size_is_refused(saved):
    path, _ = saved

    class Small(WordEmbedder):
        dim = 8

    with pytest.raises(SchemaMismatch, match="8 dimensions"):
        AnswerabilityGate.load(path, Small())


def test_no_model_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        GateModel.load(tmp_path)


def test_a_class_in_one_group_cannot_be_calibrated(tmp_path):
    data = load_data(write_gate_csv(tmp_path / "gate.csv"), "all")
    keep = [not (label == "chitchat" and group != "chitchat:0") for label, group in zip(data.labels, data.groups)]
    with pytest.raises(TrainingError, match="two groups"):
        train_gate(data.subset(keep), WordEmbedder(), EmbedderSpec(), data_digest="d", split="all")


def test_an_unknown_label_is_a_data_error(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("text,label\nhello,greeting\n")
    with pytest.raises(DataError, match="greeting"):
        load_data(path)


def test_the_array_classifier_computes_what_scikit_learn_does(tmp_path):
    import numpy as np

    from gate.data import LABELS
    from gate.linear import CalibratedLinear
    from gate.model import design_matrix
    from gate.train import fit_classifier

    data = load_data(write_gate_csv(tmp_path / "gate.csv"), "all")
    x = design_matrix(WordEmbedder().embed(data.texts), data.texts)
    fitted = fit_classifier(x, np.asarray([LABELS.index(y) for y in data.labels]), data.groups, c=1.0)
    ours = CalibratedLinear.from_sklearn(fitted)
    ours.save(tmp_path / "c.npz")
    probe = np.vstack([x, x[:5] * 3.0, np.zeros((1, x.shape[1]))])  # beyond the curves' ends too
    np.testing.assert_allclose(CalibratedLinear.load(tmp_path / "c.npz").predict_proba(probe),
                               fitted.predict_proba(probe), atol=1e-9)


def test_load_gate_shares_the_callers_embedder(saved):
    from gate.config import GateSettings
    from gate.loading import load_gate

    path, _ = saved
    asked = []
    embedder = WordEmbedder()
    gate = load_gate(GateSettings(model_dir=path), lambda spec: asked.append(spec) or embedder)
    assert gate is not None and asked == [EmbedderSpec()]
    gate.classify("hello there", None, GateThresholds())
    assert embedder.embedded == ["hello there"]


def test_load_gate_without_a_model_is_none_unless_required(tmp_path):
    from gate.config import GateSettings
    from gate.loading import load_gate

    assert load_gate(GateSettings(model_dir=tmp_path)) is None
    with pytest.raises(FileNotFoundError):
        load_gate(GateSettings(model_dir=tmp_path, required=True))
