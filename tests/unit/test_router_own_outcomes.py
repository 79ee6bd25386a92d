"""Training on our own graded outcomes (issue 18): ungraded rows, the prior's weight, the
kNN history, and the evaluation's per-category figures where large is not better."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from router.cli import app
from router.compare import side_by_side, summary
from router.data import OutcomeData, load_outcomes
from router.evaluate import evaluate
from router.metrics import large_fraction, oracle_quality_at_share, quality_at_share
from router.model import EmbedderSpec
from router.train import train_router
from tests.support.own_outcomes import FACTS, SUPPORT, HashEmbedder, own_rows


def prior_rows(n: int = 160) -> OutcomeData:
    """Another pair's outcomes, the other way round: large better on support questions."""
    prompts = [f"{(SUPPORT if i % 4 else FACTS)[i % 4]} prior {i}" for i in range(n)]
    small = np.array([i % 4 == 0 or i % 5 == 0 for i in range(n)], np.float32)
    large = np.array([i % 4 != 0 or i % 7 == 0 for i in range(n)], np.float32)
    return OutcomeData(prompts=prompts, small_ok=small, large_ok=large, categories=["subject"] * n)


def fit(prior: OutcomeData | None = None, weight: float = 1.0):
    return train_router(own_rows(), HashEmbedder(), EmbedderSpec(), threads=1, prior=prior, prior_weight=weight)


def scores(model, data: OutcomeData) -> np.ndarray:
    emb = HashEmbedder().embed(data.prompts)
    return model.score_embedded(emb, data.prompts, data.categories)


@pytest.fixture(scope="module")
def fitted():
    return {"none": fit(), "zero": fit(prior_rows(), 0.0), "one": fit(prior_rows(), 1.0)}


# ---- data --------------------------------------------------------------------------


def test_ungraded_rows_are_dropped_and_counted(tmp_path: Path):
    path = tmp_path / "outcomes.csv"
    path.write_text(
        "id,prompt,category,score:small,score:large\n"
        "1,capital of France,facts,0.2,0.9\n"
        "2,where is my order,order,,0.5\n"          # small not graded
        "3,refund please,refund,0.75,\n"            # large not graded
        "4,spell cat backwards,instructions,1,0\n"
        "5,what is 2 + 2,,0.5,0.4\n"                # no category
    )
    data = load_outcomes(path, "score:small", "score:large")
    assert len(data) == 3 and data.ungraded == 2
    assert data.prompts == ["capital of France", "spell cat backwards", "what is 2 + 2"]
    assert data.small.tolist() == pytest.approx([0.2, 1.0, 0.5]) and data.large.tolist() == pytest.approx([0.9, 0.0, 0.4])
    assert data.small_ok.tolist() == [0.0, 1.0, 1.0] and data.large_ok.tolist() == [1.0, 0.0, 0.0]
    assert data.large_better.tolist() == [1.0, 0.0, 0.0]
    assert data.categories == ["facts", "instructions", None]
    assert data.subset(np.array([0])).small.tolist() == pytest.approx([0.2])


def test_rows_labelled_only_ok_get_scores_from_the_flags():
    data = OutcomeData(prompts=["a", "b"], small_ok=np.array([1.0, 0.0], np.float32),
                       large_ok=np.array([1.0, 1.0], np.float32), categories=[None, None])
    assert data.small.tolist() == [1.0, 0.0] and data.large_better.tolist() == [0.0, 1.0]


# ---- training: prior weight and history ----------------------------------------------


def test_prior_weight_zero_is_training_without_prior(fitted):
    test = own_rows(80, seed=1)
    assert np.array_equal(scores(fitted["zero"], test), scores(fitted["none"], test))
    assert fitted["zero"].manifest.metrics["rows_prior"] == 0


def test_a_weighted_prior_changes_the_fit_and_is_recorded(fitted):
    test = own_rows(80, seed=1)
    assert not np.allclose(scores(fitted["one"], test), scores(fitted["none"], test))
    metrics = fitted["one"].manifest.metrics
    assert (metrics["rows_own"], metrics["rows_prior"], metrics["prior_weight"]) == (240, 160, 1.0)
    assert fitted["one"].manifest.train_rows == 400


def test_knn_history_holds_only_our_own_outcomes(fitted):
    own = own_rows()
    history = fitted["one"].history
    assert len(history) == len(own)
    assert np.array_equal(history.small_ok, own.small) and np.array_equal(history.large_ok, own.large)
    assert np.allclose(history.embeddings, HashEmbedder().embed(own.prompts))


def test_prior_categories_do_not_enter_the_category_model(fitted):
    assert fitted["one"].stack.category_names == ["facts", "order"]


def test_the_router_learns_where_large_is_better(fitted):
    test = own_rows(200, seed=2)
    report, _ = evaluate(scores(fitted["none"], test), test, threshold=0.5)
    assert report.auc_large_better > 0.9
    assert report.per_category["facts"].router_picks == "large"
    assert report.per_category["order"].router_picks == "small"


# ---- evaluation ---------------------------------------------------------------------


def small_better_set() -> tuple[OutcomeData, np.ndarray]:
    """8 rows, large better on average only in 'facts'; scores rank facts first."""
    small = np.array([0.0, 0.0, 1.0, 0.5, 1.0, 1.0, 1.0, 0.5], np.float32)
    large = np.array([1.0, 1.0, 0.0, 0.5, 0.0, 0.0, 0.5, 0.0], np.float32)
    cats = ["facts"] * 4 + ["order"] * 4
    data = OutcomeData(prompts=[f"q{i}" for i in range(8)], small_ok=(small >= 0.5).astype(np.float32),
                       large_ok=(large >= 0.5).astype(np.float32), categories=cats,
                       small_score=small, large_score=large)
    return data, np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.2, 0.3, 0.4])


def test_apgr_is_undefined_where_large_is_not_better():
    data, score = small_better_set()
    report, _ = evaluate(score, data, threshold=0.5, share=0.25)
    assert report.small_quality == pytest.approx(5 / 8) and report.large_quality == pytest.approx(3 / 8)
    assert report.large_better_on_average is False
    assert report.apgr is None and report.cpt50 is None and report.apgr_oracle is None
    assert report.auc_large_better == 1.0  # the two large-better rows score highest
    # Top 2 of 8 go large: rows 0 and 1, each +1.
    assert report.quality_at_share == pytest.approx((5 + 2) / 8)
    assert report.oracle_quality_at_share == pytest.approx((5 + 2) / 8)
    assert report.random_quality_at_share == pytest.approx(5 / 8 + 0.25 * (3 / 8 - 5 / 8))
    text = "\n".join(side_by_side(report, report))
    assert "APGR and CPT are undefined" in text and "n/a" in text


def test_per_category_figures():
    data, score = small_better_set()
    report, _ = evaluate(score, data, threshold=0.5, share=0.5)
    facts, order = report.per_category["facts"], report.per_category["order"]
    assert (facts.rows, order.rows) == (4, 4)
    assert facts.better_tier == "large" and order.better_tier == "small"
    # The top half overall is the four facts rows: all of facts large, none of order.
    assert (facts.large_share, order.large_share) == (1.0, 0.0)
    assert (facts.router_picks, order.router_picks) == ("large", "small")
    assert facts.quality_at_share == pytest.approx(facts.large_quality)
    assert order.quality_at_share == pytest.approx(order.small_quality)
    assert facts.quality_by_share["0.00"] == pytest.approx(facts.small_quality)
    assert facts.large_better_share == pytest.approx(0.5)


def test_share_cut_splits_a_tied_block_evenly():
    sent = large_fraction(np.array([0.9, 0.5, 0.5, 0.5, 0.1]), share=0.4)
    assert sent.tolist() == pytest.approx([1.0, 1 / 3, 1 / 3, 1 / 3, 0.0])
    small, large = np.array([0.0, 1.0, 1.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    assert quality_at_share(np.zeros(5), small, large, 0.4) == pytest.approx(0.6 + 0.4 * (0.6 - 0.6))
    # The oracle never sends a query where large is worse, whatever the share.
    assert oracle_quality_at_share(small, large, 1.0) == pytest.approx(1.0)


def test_summary_keys_name_each_router():
    data, score = small_better_set()
    own, _ = evaluate(score, data, threshold=0.5)
    default, _ = evaluate(-score, data, threshold=0.5)
    result = summary({"own": own, "default": default}, {"own": "v1", "default": "v0"}, {"split": "test"})
    assert set(result["auc_large_better"]) == {"own", "default"}
    assert set(result["quality_at_share"]) == {"own", "default", "oracle", "random", "share"}
    assert result["n_heldout"] == 8 and result["quality_at_share"]["share"] == 0.3
    assert result["per_category"]["facts"]["own"]["router_picks"] == "large"
    assert result["apgr"] == {"own": None, "default": None}
    json.dumps(result)


# ---- the loop through the CLI --------------------------------------------------------


def write_outcomes(path: Path, data: OutcomeData, blanks: int = 0) -> Path:
    lines = ["id,prompt,category,score:small,score:large"]
    for i, (p, c, s, l) in enumerate(zip(data.prompts, data.categories, data.small, data.large)):
        lines.append(f'{i},"{p}",{c},{"" if i < blanks else f"{s:.3f}"},{l:.3f}')
    path.write_text("\n".join(lines) + "\n")
    return path


def test_train_with_prior_then_eval_against_a_baseline(tmp_path: Path):
    data = write_outcomes(tmp_path / "outcomes.csv", own_rows(300), blanks=5)
    prior = tmp_path / "prior.csv"
    rows = prior_rows()
    prior.write_text("prompt,s,l\n" + "\n".join(
        f'"{p}",{int(s)},{int(l)}' for p, s, l in zip(rows.prompts, rows.small_ok, rows.large_ok)) + "\n")
    cols = ["--data", str(data), "--small-col", "score:small", "--large-col", "score:large",
            "--seed", "0", "--test-fraction", "0.3"]
    own, base = tmp_path / "own", tmp_path / "base"
    runner = CliRunner()
    trained = runner.invoke(app, ["train", *cols, "--split", "train", "--out", str(own), "--threads", "1",
                                  "--prior", str(prior), "--prior-small-col", "s", "--prior-large-col", "l",
                                  "--prior-weight", "0.2"])
    assert trained.exit_code == 0, trained.output
    assert "left out 5 rows" in trained.output and "prior: 160 rows" in trained.output
    manifest = json.loads((own / "manifest.json").read_text())
    metrics = manifest["metrics"]
    assert metrics["rows_prior"] == 160 and metrics["prior_weight"] == 0.2
    assert len(metrics["data_digest"]) == 64 and len(metrics["prior_digest"]) == 64
    assert metrics["split"] == {"rows": "train", "seed": 0, "test_fraction": 0.3}
    assert manifest["tiers"] == {"small": "small", "large": "large"}  # from the score:<target> columns
    baseline = runner.invoke(app, ["train", "--data", str(prior), "--small-col", "s", "--large-col", "l",
                                   "--out", str(base), "--threads", "1"])
    assert baseline.exit_code == 0, baseline.output
    assert json.loads((base / "manifest.json").read_text())["tiers"] is None  # another pair's columns

    out = tmp_path / "results" / "pair.json"
    result = runner.invoke(app, ["eval", "--model", str(own), "--baseline", str(base), *cols, "--split", "test",
                                 "--name", "own", "--baseline-name", "default", "--json-out", str(out)])
    assert result.exit_code == 0, result.output
    assert "AUC (large better)" in result.output and "per category" in result.output
    saved = json.loads(out.read_text())
    assert saved["n_heldout"] == 89  # 30 % of the 295 graded rows
    assert set(saved["auc_large_better"]) == {"own", "default"}
    assert {"own", "default", "oracle", "share"} <= set(saved["quality_at_share"])
    assert saved["auc_large_better"]["own"] > 0.8
    assert saved["quality_at_share"]["own"] > saved["quality_at_share"]["default"]
    assert set(saved["per_category"]) == {"facts", "order"}
    assert "warning" not in result.output  # the held-out rows of the split trained on

    overlap = runner.invoke(app, ["eval", "--model", str(own), *cols, "--split", "all"])
    assert overlap.exit_code == 0 and "are not all held out" in overlap.output
