"""The outcomes file `router train` reads: one `score:<target>` column per target.

Columns: id, prompt, category, then `score:<target>` in [0, 1] per target, empty (CSV)
or null (JSONL) where the answer was not graded. Train on two of them with
`router train --small-col score:small --large-col score:large`, which leaves out (and
counts) the rows without both.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from router.grading.answers import AnswerRow
from router.grading.protocol import Score

SCORE = "score:"


def outcome_columns(targets: Sequence[str]) -> list[str]:
    return ["id", "prompt", "category", *(SCORE + t for t in targets)]


def outcome_records(
    rows: Sequence[AnswerRow], scores: Mapping[str, Sequence[Score]], drop_ungraded: bool = False
) -> list[dict[str, str | float | None]]:
    """One record per row; `scores[target][i]` belongs to `rows[i]`."""
    records: list[dict[str, str | float | None]] = []
    for i, row in enumerate(rows):
        values = {SCORE + t: column[i] for t, column in scores.items()}
        if drop_ungraded and any(v is None for v in values.values()):
            continue
        records.append({"id": row.id, "prompt": row.prompt, "category": row.category, **values})
    return records


def write_outcomes(
    path: Path, columns: Sequence[str], records: Sequence[Mapping[str, str | float | None]]
) -> None:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(dict(r), ensure_ascii=False) + "\n" for r in records),
                        encoding="utf-8")
        return
    if path.suffix != ".csv":
        raise ValueError(f"{path}: outcomes are written as .csv or .jsonl")
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in r.items()} for r in records)


def _cell(value: str | float | None) -> str:
    if value is None:
        return ""
    return format(value, "g") if isinstance(value, float) else value
