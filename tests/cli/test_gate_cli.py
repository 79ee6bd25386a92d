"""`gateway gate train` / `gateway gate eval` on a small labelled file (hashed bag-of-words
embedder instead of MiniLM: the commands take the embedder through their context)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gate.cli import build_app, ensure_default
from gate.config import GateSettings
from gate.data import SHIPPED_DATA, data_digest
from gate.model import read_manifest
from tests.support.gate import write_gate_csv
from tests.support.retrieval import WordEmbedder


def gate_app(model_dir):
    return build_app(lambda: GateSettings(model_dir=model_dir), embedder=lambda spec: WordEmbedder())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gate_cli")
    data = write_gate_csv(tmp / "gate.csv")
    result = CliRunner().invoke(gate_app(tmp / "model"), ["train", "--data", str(data), "--version", "g1"])
    assert result.exit_code == 0, result.output
    return tmp, data


def test_train_writes_the_model_where_the_settings_say(trained):
    tmp, data = trained
    manifest = read_manifest(tmp / "model")
    assert manifest.version == "g1"
    assert manifest.split == "train" and manifest.data_digest == data_digest(data)
    assert manifest.metrics["held_out"]["rows"] == 6  # the test rows, scored at training time


def test_eval_writes_the_figures(trained):
    tmp, data = trained
    out = tmp / "results" / "gate_eval.json"
    result = CliRunner().invoke(gate_app(tmp / "model"), [
        "eval", "--data", str(data), "--json", "--json-path", str(out), "--latency-calls", "20",
        "--ood", str(data),
    ])
    assert result.exit_code == 0, result.output
    assert "not answerable (chitchat + no_context): precision" in result.output
    figures = json.loads(out.read_text())
    assert {"precision", "recall", "p99_ms", "per_class", "thresholds", "latency", "ood_answerable"} <= set(figures)
    assert set(figures["per_class"]) == {"answerable", "chitchat", "no_context"}
    assert figures["rows"] == 6 and figures["split"] == "test"
    assert set(figures["latency"]) == {"with_embedding", "classifier_only", "embedding_only"}
    assert figures["latency"]["with_embedding"]["calls"] == 20
    assert 0 <= figures["p99_ms"] == figures["latency"]["with_embedding"]["p99_ms"]


def test_eval_warns_when_the_rows_were_trained_on(trained):
    tmp, data = trained
    result = CliRunner().invoke(gate_app(tmp / "model"), ["eval", "--data", str(data), "--split", "train",
                                                          "--latency-calls", "0"])
    assert result.exit_code == 0, result.output
    assert "is not held out" in result.output


def test_eval_without_a_model_fails(tmp_path):
    result = CliRunner().invoke(gate_app(tmp_path / "none"), ["eval", "--latency-calls", "0"])
    assert result.exit_code != 0
    assert isinstance(result.exception, FileNotFoundError)


@pytest.mark.parametrize(("digest", "retrains"), [(None, True), ("stale", True), ("shipped", False)])
def test_ensure_default_trains_only_when_missing_or_stale(tmp_path, monkeypatch, digest, retrains):
    from gate import cli

    calls = []
    monkeypatch.setattr(cli, "_train", lambda *args, **kwargs: calls.append((args, kwargs)))
    model_dir = tmp_path / "model"
    if digest is not None:
        manifest = {"version": "v", "created_at": "now", "schema_hash": "", "feature_names": [], "labels": [],
                    "embedder": {}, "embedding_dim": 4, "split": "train", "train_rows": 1,
                    "data_digest": data_digest(SHIPPED_DATA) if digest == "shipped" else "0" * 64}
        from gate.model import expected_schema

        manifest["schema_hash"] = expected_schema(4)
        model_dir.mkdir()
        (model_dir / "manifest.json").write_text(json.dumps(manifest))
    ensure_default(GateSettings(model_dir=model_dir))
    assert bool(calls) == retrains
    if retrains:
        args, kwargs = calls[0]
        assert args[2] == model_dir and kwargs["split"] == "train" and kwargs["spec"].kind == "static"
