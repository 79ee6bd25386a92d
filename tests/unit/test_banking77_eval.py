"""The generalisation set's questions and grading (evals/banking77.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from evals.banking77 import DATA, graded, questions


def test_questions_hold_the_true_intent_once_and_are_seeded():
    frame = pd.read_csv(DATA)
    first, again = questions(frame, 20, seed=3), questions(frame, 20, seed=3)
    assert first == again and len(first) == 20
    for q in first:
        options = [line[3:] for line in q.prompt.splitlines() if line[:3] in ("A. ", "B. ", "C. ", "D. ")]
        assert len(options) == 4 and options.count(q.category.replace("_", " ")) == 1
        assert options["ABCD".index(q.answer)] == q.category.replace("_", " ")
        assert q.prompt.startswith("Which intent") and q.prompt.endswith(options[-1])


@pytest.mark.parametrize("answer, expected, ok", [
    (" C", "C", True), ("C. verify source of funds", "C", True), ("Answer: B", "B", True),
    ("A", "B", False), ("", "A", False), ("About D", "D", True), ("Cards", "C", False),
])
def test_grading_takes_the_first_standalone_letter(answer, expected, ok):
    assert graded(answer, expected) is ok
