"""The answers file `router collect` writes, read for grading.

A CSV or JSONL with `prompt` and one `answer:<target>` column per target (`small`,
`small:billing`, `large`); optional `id`, `category`, `reference`, `error:<target>`;
other columns (`latency_s:*`, `tokens:*`, `messages`) are not needed here. An answer is
missing (None) where its `error:<target>` is filled or, in JSONL, where it is null; an
empty answer without an error is a real, empty answer, and is graded as one.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from pydantic import BaseModel

ANSWER = "answer:"
ERROR = "error:"


class AnswersError(ValueError):
    """The answers file cannot be read as one."""


class AnswerRow(BaseModel):
    id: str
    prompt: str
    category: str | None = None
    reference: str | None = None
    answers: dict[str, str | None]


class AnswerTable(BaseModel):
    targets: list[str]
    rows: list[AnswerRow]


def read_records(path: Path) -> list[dict[str, str | None]]:
    """Rows of a CSV (every cell a string) or JSONL file (non-string values as text)."""
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return [dict(row) for row in csv.DictReader(handle)]
    if path.suffix == ".jsonl":
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [{k: _text(v) for k, v in json.loads(line).items()} for line in lines]
    raise AnswersError(f"{path}: expected a .csv or .jsonl file")


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _filled(value: str | None) -> str | None:
    return value if value is not None and value.strip() else None


def _row(record: dict[str, str | None], index: int, targets: list[str]) -> AnswerRow:
    answers = {
        t: None if _filled(record.get(ERROR + t)) else record.get(ANSWER + t) for t in targets
    }
    return AnswerRow(
        id=_filled(record.get("id")) or str(index),
        prompt=record.get("prompt") or "",
        category=_filled(record.get("category")),
        reference=_filled(record.get("reference")),
        answers=answers,
    )


def read_answers(path: Path) -> AnswerTable:
    records = read_records(path)
    columns = list(dict.fromkeys(k for r in records for k in r))
    if "prompt" not in columns:
        raise AnswersError(f"{path}: missing column 'prompt' (have: {', '.join(columns)})")
    targets = [c.removeprefix(ANSWER) for c in columns if c.startswith(ANSWER)]
    if not targets:
        raise AnswersError(f"{path}: no 'answer:<target>' column (have: {', '.join(columns)})")
    return AnswerTable(targets=targets, rows=[_row(r, i, targets) for i, r in enumerate(records)])
