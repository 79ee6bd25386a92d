"""Query features computed without running either model.

Two groups here, each a small pure function over the text:
- complexity and structure proxies (length, sentences, clauses, negation/qualification
  cues, questions, code and maths markers, question stem vs answer options),
- knowledge-boundary signals (overlap with the knowledge base vocabulary, product
  identifiers known vs unknown, recently changed topics) from configurable lists.
The semantic (embedding) and historical (k nearest past queries) groups live in
`text.embedding` and `router.history`; `router.model.RouterModel.feature_matrix` puts
them together (`router.model.Scorer` on the serving path).

The names below are the schema: change one and the schema hash changes, so a model
trained on the old set refuses to load instead of misrouting.
"""

from __future__ import annotations

import hashlib
import re
from typing import Iterable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")
_SENTENCE_END = re.compile(r"[.!?]+(\s|$)")
# The cue patterns below run on the lower-cased text: the same matches as re.I at half
# the cost (the router's decision budget is a few milliseconds).
# Clauses: the punctuation is counted with str.count (the same count: it never overlaps a word).
_CLAUSE_WORD = re.compile(r"\b(and|but|because|which|that|while|whereas|although|if)\b")
_NEGATION = re.compile(r"\b(not|no|never|none|neither|nor|cannot|can't|don't|doesn't|isn't|won't)\b")
_QUALIFIER = re.compile(
    r"\b(except|unless|only if|provided that|as long as|even if|however|instead|otherwise|"
    r"but not|rather than|other than|least|most likely|best|incorrect|false|true)\b",
)
_CODE = re.compile(r"```|\bdef |\bclass |\breturn\b|[{};]\s*$|=>|\(\)|#include|\bSELECT\b", re.M)
_MATH = re.compile(r"[=+*/^<>≤≥∑∫√π]|\d+\s*[-+*/^]\s*\d+|\b(sin|cos|log|sqrt|integral|derivative)\b")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_OPTION_LINE = re.compile(r"^\s*\(?[A-Ha-h][.)]\s", re.M)
_STATEMENT = re.compile(r"\bStatement \d\b")
_ROMAN = re.compile(r"\b(I|II|III|IV)\b")
_ALL_NONE = re.compile(r"\b(all|none) of the above\b|\bboth\b")  # lower-cased text
_CALC = re.compile(r"\b(calculate|compute|how many|what is the value|solve|find the)\b")  # lower-cased
_BLANK = re.compile(r"_{2,}")
_CAPS_WORD = re.compile(r"\b[A-Z]{2,}\b")
# Substrings without which a pattern cannot match: a few `in` checks (~1 us each) skip a
# regex scan (50-350 us on a 512-token prompt) for the cues most queries do not contain.
_NEEDLES: dict[re.Pattern[str], tuple[str, ...]] = {
    _CODE: ("```", "def ", "class ", "return", "{", "}", ";", "=>", "()", "#include", "SELECT"),
    _STATEMENT: ("Statement ",),
    _ALL_NONE: ("of the above", "both"),
    _CALC: ("calculate", "compute", "how many", "what is the value", "solve", "find the"),
    _BLANK: ("__",),
}
_IDENTIFIER = re.compile(r"\b[A-Z]{2,}[-_]?\d+[A-Z0-9-]*\b|\b[A-Z][a-z]+[A-Z]\w+\b")


class BoundaryLists(BaseModel):
    """Configurable vocabularies for the knowledge-boundary features."""

    model_config = ConfigDict(extra="forbid")

    kb_vocabulary: frozenset[str] = Field(default_factory=frozenset, description="Lower-cased KB words")
    known_products: frozenset[str] = Field(default_factory=frozenset, description="Known product ids")
    recent_topics: tuple[str, ...] = Field(default=(), description="Recently changed topics (phrases)")


LEXICAL_FEATURES: tuple[str, ...] = (
    "chars",
    "log_chars",
    "words",
    "mean_word_len",
    "sentences",
    "clauses",
    "negations",
    "qualifiers",
    "questions",
    "option_lines",
    "code_markers",
    "math_markers",
    "numbers",
    "digit_ratio",
    "upper_ratio",
    "newlines",
    "long_words_ratio",
    "stem_chars",
    "options_chars",
    "longest_option_chars",
    "numbered_statements",
    "roman_numerals",
    "all_none_of_above",
    "calculation_cues",
    "blanks",
    "capitalised_words",
)
BOUNDARY_FEATURES: tuple[str, ...] = (
    "kb_overlap",
    "known_ids",
    "unknown_ids",
    "recent_topic_hits",
)


def query_features(text: str, lists: BoundaryLists) -> list[float]:
    """LEXICAL_FEATURES + BOUNDARY_FEATURES, splitting and lower-casing the text once."""
    words = _WORD.findall(text)
    lowered = text.lower()
    return _lexical(text, lowered, words) + _boundary(text, lowered, words, lists)


def lexical_features(text: str) -> list[float]:
    return _lexical(text, text.lower(), _WORD.findall(text))


def boundary_features(text: str, lists: BoundaryLists) -> list[float]:
    return _boundary(text, text.lower(), _WORD.findall(text), lists)


def _lexical(text: str, lowered: str, words: list[str]) -> list[float]:
    n_words = len(words)
    chars = len(text)
    clauses = text.count(",") + text.count(";") + text.count(":") + len(_CLAUSE_WORD.findall(lowered))
    return [
        float(chars),
        float(np.log1p(chars)),
        float(n_words),
        sum(map(len, words)) / n_words if n_words else 0.0,
        float(len(_SENTENCE_END.findall(text)) or (1 if text.strip() else 0)),
        float(clauses),
        float(len(_NEGATION.findall(lowered))),
        float(len(_QUALIFIER.findall(lowered))),
        float(text.count("?")),
        float(len(_OPTION_LINE.findall(text))),
        float(_count(_CODE, text)),
        float(len(_MATH.findall(text))),
        float(len(_NUMBER.findall(text))),
        sum(map(str.isdigit, text)) / chars if chars else 0.0,  # map: ~3x a generator here
        sum(map(str.isupper, text)) / chars if chars else 0.0,
        float(text.count("\n")),
        sum(len(w) >= 9 for w in words) / n_words if n_words else 0.0,
        *_structure(text, lowered),
    ]


def _structure(text: str, lowered: str) -> list[float]:
    """A question stem followed by answer options (multiple choice, menus of choices)."""
    lines = text.split("\n")
    options = [line for line in lines if _OPTION_LINE.match(line)]
    stem = "\n".join(line for line in lines if not _OPTION_LINE.match(line))
    return [
        float(len(stem)),
        float(sum(map(len, options))),
        float(max(map(len, options), default=0)),
        float(_count(_STATEMENT, text)),
        float(len(_ROMAN.findall(text))),
        float(_count(_ALL_NONE, lowered)),
        float(_count(_CALC, lowered)),
        float(_count(_BLANK, text)),
        float(len(_CAPS_WORD.findall(text))),
    ]


def _count(pattern: re.Pattern[str], text: str) -> int:
    if not any(needle in text for needle in _NEEDLES[pattern]):
        return 0
    return len(pattern.findall(text))


def _boundary(text: str, lowered: str, words: list[str], lists: BoundaryLists) -> list[float]:
    vocab = {w.lower() for w in words}
    overlap = len(vocab & lists.kb_vocabulary) / len(vocab) if vocab and lists.kb_vocabulary else 0.0
    ids = set(_IDENTIFIER.findall(text))
    known = len(ids & lists.known_products)
    recent = sum(topic.lower() in lowered for topic in lists.recent_topics)
    return [overlap, float(known), float(len(ids) - known), float(recent)]


def schema_hash(names: Iterable[str], version: str) -> str:
    """Identifies a feature layout: names, order and the extractor version."""
    digest = hashlib.sha256(("|".join(names) + "#" + version).encode()).hexdigest()
    return digest[:16]
