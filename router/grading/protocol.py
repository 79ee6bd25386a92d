"""The grading seam: items in, a score in [0, 1] or None per item out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict

Score = float | None


class GradeItem(BaseModel):
    """One answer to grade. `target` (what answered, e.g. `small:billing`) matters only to
    graders that look answers up by who gave them (human labels); the others ignore it."""

    model_config = ConfigDict(frozen=True)

    prompt: str
    answer: str
    reference: str | None = None
    category: str | None = None
    target: str | None = None


class PairItem(BaseModel):
    """Two answers to the same prompt, compared with each other."""

    model_config = ConfigDict(frozen=True)

    prompt: str
    answer_a: str
    answer_b: str
    reference: str | None = None
    category: str | None = None


class Grader(Protocol):
    def grade(self, items: Sequence[GradeItem]) -> list[Score]:
        """One score per item, in order; None where the item could not be graded. Batched so
        that embeddings are computed together and judge calls run concurrently."""
        ...

    def counts(self) -> Mapping[str, int]:
        """Why items went ungraded (e.g. `unparseable`, `no_reference`), over all calls."""
        ...


class PairGrader(Protocol):
    def grade_pairs(self, items: Sequence[PairItem]) -> list[tuple[float, float] | None]:
        """(score of A, score of B) per pair; None where the pair could not be judged."""
        ...

    def counts(self) -> Mapping[str, int]: ...
