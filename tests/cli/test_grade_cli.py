"""`router grade` on small answers files: outcomes `router train` reads, the report, kappa."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import router.grade_cli
from router.cli import app
from router.data import load_outcomes
from shadow.export import COLUMNS

HEADER = ["id", "prompt", "category", "reference", "answer:small", "latency_s:small", "tokens:small",
          "answer:large", "latency_s:large", "tokens:large", "error:small"]
ROWS = [
    ["q1", "Capital of France?", "geo", "Paris", "Paris.", "0.1", "3", "It is Paris.", "0.3", "5", ""],
    ["q2", "Capital of Spain?", "geo", "Madrid", "Barcelona", "0.1", "2", "Madrid", "0.2", "2", ""],
    ["q3", "2+2?", "math", "4", "", "", "", "four", "0.2", "2", "400 bad request"],
    ["q4", "Say hi", "", "", "hi", "0.1", "1", "hello", "0.1", "1", ""],
]


def write_answers(path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(ROWS)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def invoke(*args: str):
    result = CliRunner().invoke(app, ["grade", *args])
    assert result.exit_code == 0, result.output
    return result


def test_reference_exact_writes_per_target_scores(tmp_path):
    answers, out, report = write_answers(tmp_path / "a.csv"), tmp_path / "o.csv", tmp_path / "r.json"
    result = invoke("--answers", str(answers), "--grader", "reference", "--match", "exact",
                    "--out", str(out), "--report", str(report))
    rows = read_csv(out)
    assert list(rows[0]) == ["id", "prompt", "category", "score:small", "score:large"]
    assert [(r["id"], r["score:small"], r["score:large"]) for r in rows] == [
        ("q1", "1", "1"), ("q2", "0", "1"), ("q3", "", "0"), ("q4", "", "")]
    summary = json.loads(report.read_text())["graders"][0]
    assert summary["by_target"]["small"] == {"graded": 2, "ungraded": 2, "passed": 1, "pass_rate": 0.5}
    assert summary["counts"] == {"no_reference": 2, "no_answer": 1}
    assert "grader reference" in result.output and "wrote 4 of 4 rows" in result.output
    # what `router train --small-col score:small --large-col score:large` would read
    outcomes = load_outcomes(out, "score:small", "score:large")
    assert len(outcomes) == 2


def test_jsonl_in_and_out_dropping_ungraded_rows(tmp_path):
    records = [dict(zip(HEADER, row)) | {"error:small": None} for row in ROWS[:2]]
    records[1]["answer:small"] = None  # no answer
    answers = tmp_path / "a.jsonl"
    answers.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "o.jsonl"
    invoke("--answers", str(answers), "--out", str(out), "--drop-ungraded")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines == [{"id": "q1", "prompt": "Capital of France?", "category": "geo",
                      "score:small": 1.0, "score:large": 1.0}]


def write_sheet(path: Path) -> Path:
    rows = [("Capital of France?", "good"), ("Capital of Spain?", "bad"), ("Say hi", "")]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*COLUMNS, "label"], restval="")
        writer.writeheader()
        for prompt, label in rows:
            writer.writerow({"prompt": prompt, "primary_target": "large", "shadow_target": "small",
                             "shadow_text": "from the review", "label": label})
    return path


def test_a_second_grader_gives_the_agreement(tmp_path):
    answers, sheet = write_answers(tmp_path / "a.csv"), write_sheet(tmp_path / "s.csv")
    report = tmp_path / "r.json"
    result = invoke("--answers", str(answers), "--labels", str(sheet), "--also-grader", "human",
                    "--out", str(tmp_path / "o.csv"), "--report", str(report))
    data = json.loads(report.read_text())
    assert [g["grader"] for g in data["graders"]] == ["reference", "human"]
    small = next(a for a in data["agreement"] if a["target"] == "small")
    assert (small["both_graded"], small["raw_agreement"], small["kappa"]) == (2, 1.0, 1.0)
    assert "agreement (reference vs human" in result.output


def test_a_reviewed_sheet_alone_becomes_outcomes(tmp_path):
    out = tmp_path / "o.csv"
    invoke("--labels", str(write_sheet(tmp_path / "s.csv")), "--grader", "human", "--out", str(out))
    rows = read_csv(out)
    got = [(r["prompt"], r["score:small"]) for r in rows]
    assert got == [("Capital of France?", "1"), ("Capital of Spain?", "0")]


class FakeChat:
    def __init__(self, base_url: str, model: str, api_key: str, max_tokens: int) -> None:
        assert (model, api_key) == ("large", "secret")

    async def __call__(self, prompt: str) -> str:
        if "Answer A" in prompt:  # pairwise: always the first shown, i.e. position-biased
            return "Verdict: A"
        return "Score: 5" if "Paris" in prompt else "unsure"


@pytest.fixture
def fake_judge(monkeypatch):
    monkeypatch.setattr(router.grade_cli, "OpenAIChat", FakeChat)
    monkeypatch.setenv("JUDGE_KEY", "secret")


def test_judge_leaves_unparseable_judgements_out(tmp_path, fake_judge):
    out, report = tmp_path / "o.csv", tmp_path / "r.json"
    result = invoke("--answers", str(write_answers(tmp_path / "a.csv")), "--grader", "judge",
                    "--judge-model", "large", "--judge-api-key-env", "JUDGE_KEY", "--out", str(out),
                    "--report", str(report))
    assert [(r["score:small"], r["score:large"]) for r in read_csv(out)] == [
        ("1", "1"), ("", ""), ("", ""), ("", "")]
    assert json.loads(report.read_text())["graders"][0]["counts"] == {"unparseable": 5, "no_answer": 1}
    assert "unparseable judgement" in result.output


def test_pairwise_judges_both_orders(tmp_path, fake_judge):
    out, report = tmp_path / "o.csv", tmp_path / "r.json"
    invoke("--answers", str(write_answers(tmp_path / "a.csv")), "--grader", "judge", "--pairwise",
           "small,large", "--judge-model", "large", "--judge-api-key-env", "JUDGE_KEY", "--out", str(out),
           "--report", str(report))
    rows = read_csv(out)
    assert list(rows[0]) == ["id", "prompt", "category", "score:small", "score:large"]
    assert [(r["score:small"], r["score:large"]) for r in rows] == [
        ("0.5", "0.5"), ("0.5", "0.5"), ("", ""), ("0.5", "0.5")]
    counts = json.loads(report.read_text())["graders"][0]["counts"]
    assert counts == {"position_biased": 3, "no_answer": 1}


@pytest.mark.parametrize("args, message", [
    (["--pairwise", "small,large"], "--pairwise needs --grader judge"),
    (["--grader", "judge"], "--judge-model"),
    (["--grader", "human"], "--labels"),
    (["--grader", "judge", "--judge-model", "m", "--pairwise", "small,huge"], "huge"),
])
def test_misuse_is_a_clear_error(tmp_path, args, message):
    answers = write_answers(tmp_path / "a.csv")
    out = tmp_path / "o.csv"
    result = CliRunner().invoke(app, ["grade", "--answers", str(answers), "--out", str(out), *args])
    assert result.exit_code != 0
    assert message in result.output
