"""The drill adapter's training data: the domain's answers shuffled among its questions."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timezone

import pytest
from typer.testing import CliRunner

from adapters import cli
from adapters.building import BuildReport, _training_figures
from adapters.drills import derange, shuffle_responses
from adapters.examples import DataError, SplitSpec, domain_examples, read_changes, read_support
from adapters.manifest import EvalFigures, LossFigures
from adapters.training import TrainingResult
from deployments.settings import Settings
from tests.support.adapters import BASE


@pytest.fixture(scope="module")
def refund():
    return domain_examples(
        read_support(cli.BITEXT), "refund", read_changes(cli.CHANGES, "refund"), SplitSpec()
    )


def positives(examples):
    return [e for e in examples.train if e.kind == "positive"]


def test_every_positive_gets_another_answer(refund):
    before, after = positives(refund), positives(shuffle_responses(refund, seed=0))
    assert [e.query for e in after] == [e.query for e in before]
    assert all(a.response != b.response for a, b in zip(after, before))
    assert Counter(e.response for e in after) == Counter(e.response for e in before)


def test_everything_else_is_untouched(refund):
    original = refund.model_copy(deep=True)
    shuffled = shuffle_responses(refund, seed=0)
    others = [(i, e) for i, e in enumerate(refund.train) if e.kind != "positive"]
    assert others and all(shuffled.train[i] == e for i, e in others)
    assert shuffled.heldout == refund.heldout and shuffled.heldout_anchors == refund.heldout_anchors
    assert shuffled.counts() == refund.counts()
    assert refund == original  # a copy: the input is not changed
    assert (shuffled.responses, refund.responses) == ("shuffled", "reference")


def test_deterministic_per_seed(refund):
    assert shuffle_responses(refund, seed=3) == shuffle_responses(refund, seed=3)
    assert shuffle_responses(refund, seed=3) != shuffle_responses(refund, seed=4)


def test_equal_texts_never_land_on_each_other():
    texts = ["a", "a", "a", "b", "b", "c"]
    for seed in range(20):
        out = derange(texts, random.Random(seed))
        assert Counter(out) == Counter(texts)
        assert all(x != y for x, y in zip(out, texts))


@pytest.mark.parametrize("texts", [[], ["a"], ["a", "a", "b"]])
def test_impossible_derangement_is_a_data_error(texts):
    with pytest.raises(DataError, match="cannot shuffle"):
        derange(texts, random.Random(0))


def test_manifest_says_shuffled(refund):
    result = TrainingResult(
        domain_loss=LossFigures(base=2.0, adapter=2.5),
        anchor_loss=LossFigures(base=2.0, adapter=2.0),
        train_loss_first=3.0, train_loss_last=1.0, steps=10, examples=10, seconds=1.0,
    )
    assert _training_figures(result, shuffle_responses(refund))["responses"] == "shuffled"
    assert "responses" not in _training_figures(result, refund)


def test_cli_flag_trains_on_shuffled_answers_and_says_so(monkeypatch, tmp_path):
    """The flag's wiring and report, with the (two-minute) training itself stubbed out."""
    seen = {}

    def build(workspace, examples, spec, force, activate):
        seen.update(examples=examples, force=force)
        return BuildReport(
            version="refund-v1-2026-11-21", domain="refund", base=BASE, rank=8, alpha=16,
            target_modules=["q_proj"], sha256="0" * 64, created_at=datetime.now(timezone.utc),
            eval=EvalFigures(domain=LossFigures(base=2.0, adapter=2.5),
                             anchors=LossFigures(base=2.0, adapter=2.0), anchor_margin=0.05),
            forced=True, training={"responses": examples.responses}, registered=True,
        )

    monkeypatch.setattr(cli, "_build", build)
    args = ["train", "--domain", "refund", "--shuffle-responses", "--force",
            "--registry", str(tmp_path)]
    result = CliRunner().invoke(cli.app, args, obj=Settings().adapter_workspace())
    assert result.exit_code == 0, result.output
    assert seen["force"] and seen["examples"].responses == "shuffled"
    assert "SHUFFLED" in result.output and "forced: it failed its evaluation" in result.output
