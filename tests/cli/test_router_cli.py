"""`router train` / `router eval` on small generated data (real embedder, real LightGBM)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from router.cli import app

EASY = ["where is my order", "reset my password", "change my email", "track my parcel",
        "update my address", "download my invoice"]
HARD = ["prove the integral of x squared converges except when n is negative",
        "compute the eigenvalues of the matrix unless it is singular",
        "derive the tax liability for a cross-border refund with multiple currencies",
        "explain why the statement is not true for every prime characteristic"]


def write_data(path: Path, n: int = 240, seed: int = 0) -> Path:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        hard = i % 2 == 0
        text = f"{rng.choice(HARD if hard else EASY)} ({i})"
        small = not hard if rng.random() > 0.1 else hard
        large = True if rng.random() > 0.1 else False
        rows.append({"prompt": text, "s": small, "l": large})
    if path.suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows))
    else:
        path.write_text("prompt,s,l\n" + "\n".join(f"\"{r['prompt']}\",{r['s']},{int(r['l'])}" for r in rows))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("router")
    data = write_data(tmp / "train.csv")
    out = tmp / "model"
    result = CliRunner().invoke(app, ["train", "--data", str(data), "--small-col", "s",
                                      "--large-col", "l", "--out", str(out), "--threads", "1"])
    assert result.exit_code == 0, result.output
    return out, tmp


def test_train_writes_a_versioned_artifact(trained):
    out, _ = trained
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["schema_hash"] and manifest["train_rows"] == 240
    assert "out_of_fold_apgr" in manifest["metrics"]
    assert (out / "head_a_large.txt").exists()


def test_eval_reports_and_plots_on_jsonl(trained):
    out, tmp = trained
    data = write_data(tmp / "test.jsonl", seed=1)
    plot = tmp / "curve.png"
    result = CliRunner().invoke(app, ["eval", "--model", str(out), "--data", str(data),
                                      "--small-col", "s", "--large-col", "l", "--json",
                                      "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    for key in ("apgr", "cpt50", "cpt80", "auc_small_not_ok", "ece", "at_threshold"):
        assert key in report
    assert report["apgr"] > 0.6  # the generated data has a learnable signal
    assert "false_escalation_rate" in report["at_threshold"]
    assert plot.stat().st_size > 0


def test_schema_mismatch_is_a_clear_error(trained, tmp_path):
    out, tmp = trained
    broken = tmp_path / "model"
    broken.mkdir()
    for f in out.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["schema_hash"] = "0000000000000000"
    (broken / "manifest.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(app, ["eval", "--model", str(broken), "--data", str(tmp / "train.csv"),
                                      "--small-col", "s", "--large-col", "l"])
    assert result.exit_code != 0
    assert "Retrain it with `router train`" in str(result.exception)


def test_missing_column_is_a_clear_error(tmp_path):
    data = write_data(tmp_path / "d.csv")
    result = CliRunner().invoke(app, ["train", "--data", str(data), "--small-col", "nope",
                                      "--large-col", "l", "--out", str(tmp_path / "m")])
    assert result.exit_code != 0 and "missing column 'nope'" in str(result.exception)


def test_if_stale_skips_a_current_model(trained):
    out, tmp = trained
    result = CliRunner().invoke(app, ["train", "--if-stale", "--data", str(tmp / "train.csv"),
                                      "--small-col", "s", "--large-col", "l", "--out", str(out)])
    assert result.exit_code == 0 and "is current" in result.output
