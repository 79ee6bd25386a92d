"""`retrieval ingest` on a folder (real MiniLM encoder) and `retrieval eval` on the KB and
reranker that setup prepared."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from deployments.settings import Settings
from retrieval.cli import app
from retrieval.store import KnowledgeStore

runner = CliRunner()


def report(output: str) -> dict:
    """The ingest report: the JSON object among the libraries' progress bars and warnings
    (the runner mixes stderr into the output)."""
    return json.loads(re.findall(r"\{[^{}]*\}", output)[-1])


def test_ingest_is_incremental(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "refunds.md").write_text("# Refunds\n## Window\nRefunds within 30 days.\n## Method\nTo the original card.\n")
    (docs / "shipping.md").write_text("# Shipping\nWe ship in 2 days.\n")
    kb = tmp_path / "kb.sqlite"
    first = runner.invoke(app, obj=Settings().retrieval, args=["ingest", str(docs), "--kb", str(kb)])
    assert first.exit_code == 0, first.output
    assert report(first.output)["added"] == 3
    (docs / "shipping.md").write_text("# Shipping\nWe ship in 3 days.\n")
    second = report(runner.invoke(app, obj=Settings().retrieval, args=["ingest", str(docs), "--kb", str(kb)]).output)
    assert (second["changed"], second["unchanged"], second["added"]) == (1, 2, 0)
    chunks, vectors, _ = KnowledgeStore(kb).load()
    assert [c.id for c in chunks] == ["refunds#0", "refunds#1", "shipping#0"] and vectors.shape[0] == 3


def test_ingest_of_a_missing_folder_fails_clearly(tmp_path):
    result = runner.invoke(app, obj=Settings().retrieval, args=["ingest", str(tmp_path / "nope"), "--kb", str(tmp_path / "kb.sqlite")])
    assert result.exit_code == 1 and "not a directory" in result.output


def test_eval_prints_every_stage(tmp_path):
    settings = Settings().retrieval
    if not (settings.reranker / "config.json").exists():
        pytest.fail(f"no reranker at {settings.reranker}: run `make models` first")
    out = tmp_path / "eval.json"
    result = runner.invoke(app, obj=Settings().retrieval, args=["eval", "--limit", "12", "--json", str(out)])
    assert result.exit_code == 0, result.output
    stages = [s["stage"] for s in json.loads(out.read_text())["stages"]]
    assert stages == ["bm25", "dense", "hybrid", "hybrid+rerank@20"]
    assert "NDCG@10 gain" in result.output
