"""How much two answers to the same request agree, in [0, 1]."""

from __future__ import annotations

import json
from typing import Protocol, Sequence

import numpy as np

from engines.types import ToolCall
from text.embedding import Embedder


class Agreement(Protocol):
    def score(self, a: str, b: str) -> float: ...


class EmbeddingAgreement:
    """Cosine of the two answers' sentence embeddings (contextual MiniLM), floored at 0.

    Meaning, not wording: two correct answers phrased differently score high, an answer
    to another question scores low. Runs in the shadow worker, never on the primary path.
    """

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    def score(self, a: str, b: str) -> float:
        if not a.strip() or not b.strip():
            return 1.0 if a.strip() == b.strip() else 0.0
        vectors = self._embedder.embed([a, b])
        return float(max(0.0, min(1.0, float(np.dot(vectors[0], vectors[1])))))


def call_agreement(a: Sequence[ToolCall], b: Sequence[ToolCall]) -> float:
    """Agreement of two answers that call tools: by function name and parsed arguments,
    not by text (argument order and spacing do not matter). The share of calls matched,
    over the longer side's count; 1.0 when neither called anything."""
    if not a and not b:
        return 1.0
    left = [_canonical(call) for call in a]
    matched = 0
    for call in b:
        key = _canonical(call)
        if key in left:
            left.remove(key)
            matched += 1
    return matched / max(len(a), len(b))


def shown(text: str, calls: Sequence[ToolCall]) -> str:
    """What an answer said, for the journal and pair review: its text, then its calls."""
    rendered = [f"{call.name}({call.arguments})" for call in calls]
    return "\n".join([text, *rendered] if text else rendered)


def _canonical(call: ToolCall) -> tuple[str, str]:
    try:
        arguments = json.dumps(json.loads(call.arguments), sort_keys=True)
    except (json.JSONDecodeError, TypeError):
        arguments = call.arguments  # not JSON: compared as sent
    return call.name, arguments
