"""`router train` / `router eval` on small generated data (real embedder, real LightGBM)."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from router.cli import app
from router.context import RouterContext
from shadow.journal import ShadowPair, Journal, read_pairs

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


def test_if_stale_retrains_a_model_with_more_trees_than_this_code_grows(trained, monkeypatch, tmp_path):
    """Each tree is decision time: heads grown before a smaller HEAD_PARAMS are retrained."""
    import shutil

    from router.model import RouterModel
    from router.train import HEAD_PARAMS

    shared, tmp = trained
    out = shutil.copytree(shared, tmp_path / "model")  # the module's model stays as it is
    grown = max(head.num_trees() for head in RouterModel.load(out).heads.values())
    monkeypatch.setitem(HEAD_PARAMS, "n_estimators", grown // 2)
    result = CliRunner().invoke(app, ["train", "--if-stale", "--data", str(tmp / "train.csv"),
                                      "--small-col", "s", "--large-col", "l", "--out", str(out)])
    assert result.exit_code == 0 and "is current" not in result.output
    assert max(head.num_trees() for head in RouterModel.load(out).heads.values()) <= grown // 2


def test_if_stale_retrains_a_model_from_before_the_distilled_scorer(trained, tmp_path):
    """An artifact whose training never considered the student (no `scorer_choice`) is retrained."""
    import json
    import shutil

    shared, tmp = trained
    out = shutil.copytree(shared, tmp_path / "model")
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["metrics"]["scorer_choice"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(app, ["train", "--if-stale", "--data", str(tmp / "train.csv"),
                                      "--small-col", "s", "--large-col", "l", "--out", str(out)])
    assert result.exit_code == 0 and "before the distilled scorer" in result.output
    assert "scorer_choice" in json.loads((out / "manifest.json").read_text())["metrics"]


def shadow_pair(i: int, prompt: str, agreement: float | None, days_ago: float = 0.0,
                primary: str = "large", category: str = "") -> ShadowPair:
    return ShadowPair(
        request_id=f"req-{i}", created_at=datetime.now(timezone.utc) - timedelta(days=days_ago),
        tags={"category": category} if category else {}, primary_target=primary,
        shadow_target="small:refund@refund-v2" if i % 2 else "small", prompt=prompt,
        primary_text="answer", shadow_text="answer", primary_latency_s=1.0, shadow_latency_s=0.2,
        agreement=agreement,
    )


def write_shadow(path: Path) -> Path:
    """20 recent scored large→small pairs (easy ones agree, hard ones do not), plus pairs the
    flywheel must skip: unscored, small primary, and older than 30 days."""
    store = Journal(path)
    for i in range(20):
        hard = i % 2 == 0
        prompt = f"{(HARD if hard else EASY)[i % 4]} (shadow {i})"
        category = ("" if i % 5 == 0 else "billing") if hard else "refund"
        store.add_pair(shadow_pair(i, prompt, 0.3 if hard else 0.95, category=category))
    store.add_pair(shadow_pair(20, "where is my order (unscored)", None))
    store.add_pair(shadow_pair(21, "reset my password (small primary)", 0.9, primary="small"))
    for i in range(22, 25):
        store.add_pair(shadow_pair(i, f"change my email (old {i})", 0.9, days_ago=60))
    return path


@pytest.fixture(scope="module")
def shadow_trained(trained) -> tuple[Path, Path, str]:
    _, tmp = trained
    store = write_shadow(tmp / "shadow.sqlite")
    out = tmp / "model-shadow"
    result = CliRunner().invoke(app, ["train", "--data", str(tmp / "train.csv"), "--small-col", "s",
                                      "--large-col", "l", "--out", str(out), "--threads", "1",
                                      "--from-shadow", str(store), "--shadow-threshold", "0.8",
                                      "--shadow-since", "30d"], obj=RouterContext(read_pairs=read_pairs))
    assert result.exit_code == 0, result.output
    return out, store, result.output


def test_train_from_shadow_adds_labelled_rows(shadow_trained):
    out, store, output = shadow_trained
    assert f"added 20 shadow rows from {store}" in output and "small-ok share 50.0%" in output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["train_rows"] == 240 + 20
    assert manifest["metrics"]["shadow"] == {"rows": 20, "small_ok_share": 0.5, "threshold": 0.8}
    # The shadow pairs' categories (some missing) switch on the category features.
    assert manifest["uses_categories"] is True


def test_train_rejects_a_bad_shadow_since(trained):
    _, tmp = trained
    store = write_shadow(tmp / "shadow-bad-since.sqlite")
    result = CliRunner().invoke(app, ["train", "--data", str(tmp / "train.csv"), "--small-col", "s",
                                      "--large-col", "l", "--out", str(tmp / "never"),
                                      "--from-shadow", str(store), "--shadow-since", "a while"],
                                obj=RouterContext(read_pairs=read_pairs))
    assert result.exit_code == 2 and "neither a duration" in result.output
    assert not (tmp / "never").exists()


def test_eval_against_a_baseline(trained, shadow_trained):
    baseline, tmp = trained
    model, _, _ = shadow_trained
    data = write_data(tmp / "compare.csv", seed=2)
    result = CliRunner().invoke(app, ["eval", "--model", str(model), "--baseline", str(baseline),
                                      "--data", str(data), "--small-col", "s", "--large-col", "l",
                                      "--json"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert any(line.split()[:3] == ["model", "baseline", "delta"] for line in lines)
    assert any(line.startswith("large share @0.500") for line in lines)
    both = json.loads(lines[-1])
    assert set(both) == {"model", "baseline", "delta"}
    assert both["model"]["rows"] == both["baseline"]["rows"] == 240
    assert both["model"]["version"] and both["baseline"]["version"]
    for key in ("apgr", "auc_small_not_ok", "ece"):
        assert both["delta"][key] == pytest.approx(both["model"][key] - both["baseline"][key])
    at_delta = both["delta"]["at_threshold"]["large_share"]
    assert at_delta == pytest.approx(both["model"]["at_threshold"]["large_share"]
                                     - both["baseline"]["at_threshold"]["large_share"])


def test_train_from_shadow_with_the_reference_grader(trained):
    # The same pairs graded by semantic match of the small answer against the large one
    # instead of the stored agreement: the labels follow the answers' texts.
    _, tmp = trained
    store = write_shadow(tmp / "shadow-graded.sqlite")
    out = tmp / "model-shadow-graded"
    result = CliRunner().invoke(app, ["train", "--data", str(tmp / "train.csv"), "--small-col", "s",
                                      "--large-col", "l", "--out", str(out), "--threads", "1",
                                      "--from-shadow", str(store), "--shadow-since", "30d",
                                      "--shadow-grader", "reference"], obj=RouterContext(read_pairs=read_pairs))
    assert result.exit_code == 0, result.output
    shadow = json.loads((out / "manifest.json").read_text())["metrics"]["shadow"]
    assert shadow["rows"] == 21  # the unscored pair is graded too: 20 + 1
    assert shadow["small_ok_share"] == 1.0  # identical answers; by agreement only half were
    bad = CliRunner().invoke(app, ["train", "--data", str(tmp / "train.csv"), "--small-col", "s",
                                   "--large-col", "l", "--out", str(tmp / "never2"), "--from-shadow",
                                   str(store), "--shadow-grader", "vibes"], obj=RouterContext(read_pairs=read_pairs))
    assert bad.exit_code == 2 and "judge:<model>" in bad.output
