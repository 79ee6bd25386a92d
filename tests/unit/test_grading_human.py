"""Human labels from a reviewed `gateway shadow sample` sheet."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from router.grading.human import HumanGrader, LabelsError, parse_label, read_labels, sheet_answers
from router.grading.protocol import GradeItem
from shadow.export import COLUMNS


def write_sheet(path: Path, rows: list[dict[str, str]], extra: tuple[str, ...] = ("label",)) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*COLUMNS, *extra], restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def pair(prompt: str, **labels: str) -> dict[str, str]:
    return {"request_id": f"r-{prompt}", "primary_target": "large", "shadow_target": "small",
            "prompt": prompt, "primary_text": f"large says {prompt}", "shadow_text": f"small says {prompt}",
            **labels}


@pytest.mark.parametrize("value, five_point, score", [
    ("good", False, 1.0), ("Bad", False, 0.0), ("yes", False, 1.0), ("no", False, 0.0),
    ("PASS", False, 1.0), ("fail", False, 0.0), ("1", False, 1.0), ("0", False, 0.0),
    ("1", True, 0.0), ("5", True, 1.0), ("4", True, 0.75), ("good", True, 1.0),
    ("maybe", False, None), ("7", True, None), ("0.5", False, None),
])
def test_parse_label(value, five_point, score):
    assert parse_label(value, five_point) == score


def test_label_scores_the_shadow_answer_and_unlabelled_rows_are_counted(tmp_path):
    sheet = read_labels(write_sheet(tmp_path / "s.csv", [
        pair("a", label="good"), pair("b", label="bad"), pair("c"), pair("d", label="meh"),
    ]))
    got = [(lb.prompt, lb.target, lb.score) for lb in sheet.labels]
    assert got == [("a", "small", 1.0), ("b", "small", 0.0)]
    assert sheet.counts == {"unlabelled": 1, "unrecognised_label": 1}


def test_primary_and_shadow_labels_and_a_five_point_column(tmp_path):
    rows = [pair("a", primary_label="5", shadow_label="2", label="good"), pair("b", primary_label="1")]
    sheet = read_labels(write_sheet(tmp_path / "s.csv", rows, ("label", "primary_label", "shadow_label")))
    got = {(lb.prompt, lb.target): lb.score for lb in sheet.labels}
    # shadow_label wins over label; "1" is the worst on a column that uses 1-5
    assert got == {("a", "large"): 1.0, ("a", "small"): 0.25, ("b", "large"): 0.0}


def test_a_sheet_without_a_label_column_is_refused(tmp_path):
    with pytest.raises(LabelsError, match="label column"):
        read_labels(write_sheet(tmp_path / "s.csv", [pair("a")], extra=()))


def test_grader_looks_up_the_answer_then_the_target(tmp_path):
    sheet = read_labels(write_sheet(tmp_path / "s.csv", [
        pair("a", label="good"), pair("a", label="bad") | {"shadow_text": "other"}, pair("b", label="no"),
    ]))
    grader = HumanGrader(sheet)
    items = [
        GradeItem(prompt="a", answer="small says a"),  # this exact answer was labelled good
        GradeItem(prompt="a", answer="fresh text", target="small"),  # the target's labels: mean
        GradeItem(prompt="b", answer="fresh text", target="large"),  # nobody labelled large on b
        GradeItem(prompt="z", answer="x"),
    ]
    assert grader.grade(items) == [1.0, 0.5, None, None]
    assert grader.counts() == {"no_label": 2}


def test_sheet_answers_is_one_row_per_prompt(tmp_path):
    rows = [pair("a", label="good", primary_label="good"), pair("b", label="bad")]
    sheet = read_labels(write_sheet(tmp_path / "s.csv", rows, ("label", "primary_label")))
    table = sheet_answers(sheet)
    assert table.targets == ["large", "small"]
    assert [(r.id, r.prompt, r.answers) for r in table.rows] == [
        ("r-a", "a", {"large": "large says a", "small": "small says a"}),
        ("r-b", "b", {"large": None, "small": "small says b"}),
    ]
