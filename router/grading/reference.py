"""Grading against a reference answer: the deterministic checks of benchmark harnesses.

    choice    the answer's multiple-choice letter (A-E) equals the reference's
    number    the answer's final number equals the reference's (GSM8K: `#### 42`)
    exact     SQuAD-normalised equality; with `contains`, also the reference as whole words
              inside the answer
    semantic  similarity of answer and reference >= threshold (MiniLM cosine by default)
    auto      per row, from the reference's shape: a lone letter -> choice, a number ->
              number, up to `short_words` words -> exact, longer -> semantic

Scores are 1 or 0. An answer without the element asked for (no letter, no number) scores
0: the model did not answer in the form asked. A row without a reference, or whose
reference lacks the element, gives None (counted): there is nothing to grade against.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from router.grading.protocol import GradeItem, Score
from router.grading.similarity import EmbeddingSimilarity, Similarity

T = TypeVar("T")
MatchKind = Literal["auto", "choice", "number", "exact", "semantic"]

# Keywords are case-insensitive, letters are not: a lowercase letter counts only where it
# cannot be the article "a" ("the answer is a bit unclear" holds no choice).
_LETTER = r"[(\[*]*(?:([A-E])\b|([a-e])(?=[)\]*.:,]|\s*$))"
_BARE = re.compile(r"^\W*([A-Ea-e])\W*$")
_AFTER = r"(?:\s+(?i:is|be|would be))?\s*[:=]?\s*(?:(?i:option|choice)\s+)?" + _LETTER
# "The answer is B. Option C is wrong": what follows "answer" outranks an option named later.
_STATED = (re.compile(r"(?i:answer)" + _AFTER), re.compile(r"(?i:option|choice)" + _AFTER))
_LEADING = re.compile(r"^\s*[(\[*]*([A-E])(?:[)\].:]|\*\*)")
_PARENTHESISED = re.compile(r"\(([A-E])\)")
# A minus counts only at a word's start: "3-4" is 3 and 4, "-4" alone is negative.
_NUMBER = re.compile(r"(?:(?<![\w-])-)?\d[\d,]*(?:\.\d+)?")
_NUMERIC_REFERENCE = re.compile(r"^\s*[-+]?\$?\s*\d[\d,]*(?:\.\d+)?\s*%?\s*$")
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")


class ReferenceConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    match: MatchKind = "auto"
    threshold: float = Field(0.6, ge=0.0, le=1.0, description="Semantic similarity that counts as a match")
    contains: bool = Field(True, description="Exact also when the reference is whole words of the answer")
    tolerance: float = Field(1e-6, ge=0.0, description="Relative tolerance of number matching")
    short_words: int = Field(4, ge=1, description="Auto: longest reference graded by exact match")


def choice_letter(text: str) -> str | None:
    """The multiple-choice letter an answer gives: "B", "(b)", "Answer: B", "The answer is b."."""
    if bare := _BARE.match(text):
        return bare.group(1).upper()
    for pattern in _STATED:
        stated = list(pattern.finditer(text))
        if stated:
            return (stated[-1].group(1) or stated[-1].group(2)).upper()
    if leading := _LEADING.match(text):
        return leading.group(1)
    parenthesised = _PARENTHESISED.findall(text)
    return parenthesised[-1] if parenthesised else None


def final_number(text: str) -> float | None:
    """GSM8K style: the number after the last `####`, else the last number; commas dropped."""
    head, sep, tail = text.rpartition("####")
    after = _NUMBER.findall(tail) if sep else []
    found = after[:1] or _NUMBER.findall(head if sep else tail)
    return float(found[-1].replace(",", "")) if found else None


def normalise(text: str) -> str:
    """SQuAD normalisation: lowercase, no punctuation, no articles, single spaces."""
    kept = "".join(" " if _is_punctuation(ch) else ch for ch in text.lower())
    return " ".join(_ARTICLES.sub(" ", kept).split())


def _is_punctuation(ch: str) -> bool:
    return ch in string.punctuation or unicodedata.category(ch).startswith("P")


def exact_match(answer: str, reference: str, contains: bool) -> bool:
    got, want = normalise(answer), normalise(reference)
    if got == want:
        return True
    return contains and bool(want) and f" {want} " in f" {got} "


def numbers_match(answer: float, reference: float, tolerance: float) -> bool:
    return abs(answer - reference) <= tolerance * max(1.0, abs(reference))


def auto_kind(reference: str, short_words: int) -> MatchKind:
    if _BARE.match(reference):
        return "choice"
    if "####" in reference or _NUMERIC_REFERENCE.match(reference):
        return "number"
    return "exact" if len(reference.split()) <= short_words else "semantic"


class ReferenceGrader:
    """Grades answers against their reference; semantic rows are scored in one batch."""

    def __init__(self, config: ReferenceConfig | None = None, similarity: Similarity | None = None) -> None:
        self.config = config or ReferenceConfig()
        self._similarity = similarity or EmbeddingSimilarity()
        self._counts: Counter[str] = Counter()

    def counts(self) -> Mapping[str, int]:
        return dict(self._counts)

    def grade(self, items: Sequence[GradeItem]) -> list[Score]:
        scores: list[Score] = [None] * len(items)
        semantic: list[int] = []
        for i, item in enumerate(items):
            kind = self._kind(item.reference)
            if kind is None:
                self._counts["no_reference"] += 1
            elif kind == "semantic":
                semantic.append(i)
            else:
                scores[i] = self._check(kind, item.answer, item.reference or "")
        if semantic:
            pairs = [(items[i].answer, items[i].reference or "") for i in semantic]
            for i, similarity in zip(semantic, self._similarity.similarity(pairs)):
                scores[i] = float(similarity >= self.config.threshold)
        return scores

    def _kind(self, reference: str | None) -> MatchKind | None:
        if reference is None or not reference.strip():
            return None
        if self.config.match == "auto":
            return auto_kind(reference, self.config.short_words)
        return self.config.match

    def _check(self, kind: MatchKind, answer: str, reference: str) -> Score:
        if kind == "exact":
            return float(exact_match(answer, reference, self.config.contains))
        if kind == "choice":
            want, got = choice_letter(reference), choice_letter(answer)
            return self._compare(want, got, lambda w, g: w == g)
        want_n, got_n = final_number(reference), final_number(answer)
        return self._compare(want_n, got_n, lambda w, g: numbers_match(g, w, self.config.tolerance))

    def _compare(self, want: T | None, got: T | None, same: Callable[[T, T], bool]) -> Score:
        if want is None:
            self._counts["unusable_reference"] += 1
            return None
        return float(got is not None and same(want, got))
