"""A grader over a whole answers table: every (row, target) answer in one batch.

Results are columns, target -> one score per row (None where not graded). Answers that
are missing (the target failed to answer) are not sent to the grader; they are counted
`no_answer`.
"""

from __future__ import annotations

from collections.abc import Sequence

from router.grading.answers import AnswerRow, AnswerTable
from router.grading.protocol import GradeItem, Grader, PairGrader, PairItem, Score

Columns = dict[str, list[Score]]


def _item(row: AnswerRow, target: str) -> GradeItem:
    return GradeItem(prompt=row.prompt, answer=row.answers[target] or "", reference=row.reference,
                     category=row.category, target=target)


def grade_table(grader: Grader, table: AnswerTable) -> tuple[Columns, int]:
    """Columns of scores, and how many answers were missing."""
    cells = [(i, t) for t in table.targets for i, row in enumerate(table.rows) if row.answers[t] is not None]
    scores = grader.grade([_item(table.rows[i], t) for i, t in cells])
    columns: Columns = {t: [None] * len(table.rows) for t in table.targets}
    for (i, target), score in zip(cells, scores):
        columns[target][i] = score
    return columns, len(table.targets) * len(table.rows) - len(cells)


def _pair(row: AnswerRow, a: str, b: str) -> PairItem:
    return PairItem(prompt=row.prompt, answer_a=row.answers[a] or "", answer_b=row.answers[b] or "",
                    reference=row.reference, category=row.category)


def grade_pairs_table(judge: PairGrader, table: AnswerTable, targets: Sequence[str]) -> tuple[Columns, int]:
    """Columns of the two targets' scores from judging their answers against each other."""
    a, b = targets
    rows = [i for i, row in enumerate(table.rows) if None not in (row.answers[a], row.answers[b])]
    results = judge.grade_pairs([_pair(table.rows[i], a, b) for i in rows])
    columns: Columns = {a: [None] * len(table.rows), b: [None] * len(table.rows)}
    for i, result in zip(rows, results):
        if result is not None:
            columns[a][i], columns[b][i] = result
    return columns, len(table.rows) - len(rows)
