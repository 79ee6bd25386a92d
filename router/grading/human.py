"""Human labels from a reviewed `gateway shadow sample` sheet (CSV).

The sheet is the export's columns (`shadow/export.py`: prompt, primary_target,
shadow_target, primary_text, shadow_text, ...) with a reviewer's column added:

    label          the verdict on the shadow answer (the one on trial; the primary answer
                   is what it was compared with)
    shadow_label   the same; wins over `label` where both are filled
    primary_label  the verdict on the primary answer

Values: good/bad, yes/no, pass/fail, true/false, 1/0, or 1-5 mapped to [0, 1]. A column
holding any of 2-5 is read on the 1-5 scale (where 1 is the worst, not a pass). Rows with
no label are skipped and counted `unlabelled`; a value none of these is counted
`unrecognised_label` and skipped.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel

from router.grading.answers import AnswerRow, AnswerTable
from router.grading.protocol import GradeItem, Score

PRIMARY = "primary_label"
SHADOW = ("shadow_label", "label")
_WORDS = {
    "good": 1.0, "yes": 1.0, "pass": 1.0, "true": 1.0, "ok": 1.0, "correct": 1.0,
    "bad": 0.0, "no": 0.0, "fail": 0.0, "false": 0.0, "wrong": 0.0, "incorrect": 0.0,
}
_FIVE_POINT = {"2", "3", "4", "5"}


class LabelsError(ValueError):
    """The sheet is not a labelled shadow sample."""


class Label(BaseModel):
    request_id: str = ""
    prompt: str
    target: str
    answer: str
    score: float


class LabelSheet(BaseModel):
    labels: list[Label]
    counts: dict[str, int]


def parse_label(value: str, five_point: bool) -> Score:
    """A reviewer's cell as a score in [0, 1]; None when it is none of the accepted forms."""
    text = value.strip().lower()
    if text in _WORDS:
        return _WORDS[text]
    try:
        number = float(text)
    except ValueError:
        return None
    if five_point:
        return (number - 1) / 4 if 1 <= number <= 5 else None
    return number if number in (0.0, 1.0) else None


def _five_point(rows: Sequence[Mapping[str, str]], column: str) -> bool:
    return any((row.get(column) or "").strip().split(".")[0] in _FIVE_POINT for row in rows)


def _cell(row: Mapping[str, str], columns: Sequence[str]) -> tuple[str, str] | None:
    """The first filled column of `columns` in `row`, and its value."""
    for column in columns:
        if (row.get(column) or "").strip():
            return column, row[column]
    return None


def read_labels(path: Path) -> LabelSheet:
    # utf-8-sig: a sheet saved from a spreadsheet often starts with a byte-order mark.
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    header = set(rows[0]) if rows else set()
    missing = {"prompt", "primary_target", "shadow_target"} - header
    if missing or not header & {PRIMARY, *SHADOW}:
        lacking = sorted(missing) or "a label column"
        raise LabelsError(f"{path}: needs prompt, primary_target, shadow_target and a label column "
                          f"({', '.join(SHADOW)} or {PRIMARY}); missing {lacking}")
    scales = {c: _five_point(rows, c) for c in (PRIMARY, *SHADOW)}
    labels: list[Label] = []
    counts: Counter[str] = Counter()
    for row in rows:
        sides = [("primary", (PRIMARY,)), ("shadow", SHADOW)]
        cells = [(side, _cell(row, columns)) for side, columns in sides]
        if all(cell is None for _, cell in cells):
            counts["unlabelled"] += 1
        for side, cell in cells:
            if cell is None:
                continue
            score = parse_label(cell[1], scales[cell[0]])
            if score is None:
                counts["unrecognised_label"] += 1
                continue
            labels.append(Label(request_id=row.get("request_id") or "", prompt=row["prompt"],
                                target=row[f"{side}_target"],
                                answer=row.get(f"{side}_text") or "", score=score))
    return LabelSheet(labels=labels, counts=dict(counts))


def _means(pairs: Sequence[tuple[tuple[str, str], float]]) -> dict[tuple[str, str], float]:
    """A prompt reviewed more than once gets the mean of its labels."""
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for key, score in pairs:
        groups[key].append(score)
    return {key: sum(v) / len(v) for key, v in groups.items()}


class HumanGrader:
    """Looks each item up in the sheet: by its exact answer to the prompt first, else by
    the target that answered it (labels of that target's answer on the sheet)."""

    def __init__(self, sheet: LabelSheet) -> None:
        self._by_answer = _means([((lb.prompt, lb.answer.strip()), lb.score) for lb in sheet.labels])
        self._by_target = _means([((lb.prompt, lb.target), lb.score) for lb in sheet.labels])
        self._counts: Counter[str] = Counter(sheet.counts)

    def counts(self) -> Mapping[str, int]:
        return dict(self._counts)

    def grade(self, items: Sequence[GradeItem]) -> list[Score]:
        return [self._lookup(item) for item in items]

    def _lookup(self, item: GradeItem) -> Score:
        score = self._by_answer.get((item.prompt, item.answer.strip()))
        if score is None and item.target is not None:
            score = self._by_target.get((item.prompt, item.target))
        if score is None:
            self._counts["no_label"] += 1
        return score


def sheet_answers(sheet: LabelSheet) -> AnswerTable:
    """The labelled answers as an answers table (one row per prompt), to grade the sheet
    itself or to judge the same answers another way."""
    rows: dict[str, AnswerRow] = {}
    for label in sheet.labels:
        fresh = AnswerRow(id=label.request_id or str(len(rows)), prompt=label.prompt, answers={})
        row = rows.setdefault(label.prompt, fresh)
        row.answers.setdefault(label.target, label.answer)
    targets = list(dict.fromkeys(label.target for label in sheet.labels))
    for row in rows.values():
        row.answers = {t: row.answers.get(t) for t in targets}
    return AnswerTable(targets=targets, rows=list(rows.values()))
