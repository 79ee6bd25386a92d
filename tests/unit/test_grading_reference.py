"""Reference grading: letters, final numbers, normalised matches, auto choice, semantic."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from router.grading.protocol import GradeItem
from router.grading.reference import (
    ReferenceConfig,
    ReferenceGrader,
    auto_kind,
    choice_letter,
    exact_match,
    final_number,
    normalise,
)
from router.grading.similarity import EmbeddingSimilarity


@pytest.mark.parametrize("text, letter", [
    ("B", "B"), ("(B)", "B"), ("b.", "B"), ("**C**", "C"), ("Answer: B", "B"),
    ("The answer is b.", "B"), ("The correct answer is (D) because...", "D"),
    ("The final answer is: E", "E"), ("answer: **a**", "A"), ("B) Paris", "B"),
    ("I would pick (C) here", "C"), ("The answer is B. Option C is wrong.", "B"),
    ("The answer is a bit unclear", None), ("A cat sat on the mat", None), ("no idea", None),
])
def test_choice_letter(text, letter):
    assert choice_letter(text) == letter


@pytest.mark.parametrize("text, number", [
    ("She pays $1,234.50 in total.", 1234.5), ("#### 42", 42.0), ("so 18. Then 20 apples", 20.0),
    ("The change is -5", -5.0), ("pages 3-4", 4.0), ("#### 72\nsee step 3", 72.0),
    ("first 18, then ####", 18.0), ("no number here", None),
])
def test_final_number(text, number):
    assert final_number(text) == number


def test_normalise_is_squad_style():
    assert normalise("The  Eiffel-Tower!") == "eiffel tower"
    assert normalise("An apple, a day.") == "apple day"


@pytest.mark.parametrize("answer, reference, contains, match", [
    ("Paris.", "paris", False, True),
    ("The capital is Paris, of course", "Paris", True, True),
    ("The capital is Paris, of course", "Paris", False, False),
    ("Parisian food", "Paris", True, False),  # whole words only
    ("New York City", "new york", True, True),
])
def test_exact_match(answer, reference, contains, match):
    assert exact_match(answer, reference, contains) is match


@pytest.mark.parametrize("reference, kind", [
    ("C", "choice"), ("(b)", "choice"), ("42", "number"), ("$1,000.5", "number"),
    ("Natalia sold 48 clips... #### 72", "number"), ("Paris", "exact"), ("the red fox jumps", "exact"),
    ("the quick red fox jumps high", "semantic"),
])
def test_auto_kind(reference, kind):
    assert auto_kind(reference, short_words=4) == kind


def item(answer: str, reference: str | None) -> GradeItem:
    return GradeItem(prompt="q", answer=answer, reference=reference)


def test_auto_grades_each_row_by_its_reference_and_skips_missing_ones():
    grader = ReferenceGrader()
    items = [item("The answer is (B).", "B"), item("I think A", "B"), item("#### 1,000", "1000"),
             item("so it is 999", "#### 1000"), item("It's Paris.", "Paris"), item("Lyon", "Paris"),
             item("no letter at all", "C"), item("anything", None), item("anything", "  ")]
    assert grader.grade(items) == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, None, None]
    assert grader.counts() == {"no_reference": 2}


def test_a_forced_kind_with_an_unusable_reference_is_left_out():
    grader = ReferenceGrader(ReferenceConfig(match="choice"))
    assert grader.grade([item("B", "Paris"), item("B", "b")]) == [None, 1.0]
    assert grader.counts() == {"unusable_reference": 1}


def test_numbers_match_within_the_tolerance():
    grader = ReferenceGrader(ReferenceConfig(match="number", tolerance=1e-3))
    assert grader.grade([item("3.1416", "3.14159"), item("3.2", "3.14159")]) == [1.0, 0.0]


class FakeEmbedder:
    """Fixed unit vectors per text; records each batch it is asked for."""

    dim = 2

    def __init__(self, vectors: dict[str, tuple[float, float]]) -> None:
        self.vectors = vectors
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        rows = np.array([self.vectors[t] for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_semantic_match_batches_embeddings_and_applies_the_threshold():
    reference = "the meeting moved to thursday afternoon"
    embedder = FakeEmbedder({reference: (1.0, 0.0), "close": (0.8, 0.6), "far": (0.0, 1.0)})
    config = ReferenceConfig(match="semantic", threshold=0.75)
    grader = ReferenceGrader(config, EmbeddingSimilarity(embedder))
    assert grader.grade([item("close", reference), item("far", reference)]) == [1.0, 0.0]
    assert len(embedder.calls) == 1  # answers and references in one batch
    stricter = ReferenceGrader(config.model_copy(update={"threshold": 0.9}), EmbeddingSimilarity(embedder))
    assert stricter.grade([item("close", reference)]) == [0.0]


def test_auto_sends_only_long_references_to_the_similarity():
    long_reference = "the meeting moved to thursday afternoon"
    embedder = FakeEmbedder({long_reference: (1.0, 0.0), "same": (1.0, 0.0)})
    grader = ReferenceGrader(similarity=EmbeddingSimilarity(embedder))
    assert grader.grade([item("B", "B"), item("same", long_reference)]) == [1.0, 1.0]
    assert embedder.calls == [["same", long_reference]]
