"""Reading a judge's free text: a score on a scale, or a pairwise verdict.

Judges drift from the format asked for, so several forms are accepted; anything else is
None, which the caller counts as unparseable and leaves out, never scored 0 or 1.

    score:   {"score": 4}   Score: 4   **Rating:** 4   Score (1-5): 4   4/5   4 out of 5   4
    verdict: {"winner": "A"}   Verdict: B   [[A]] ([[C]] is a tie)   Answer A is better   tie
"""

from __future__ import annotations

import json
import re
from typing import Literal

Verdict = Literal["A", "B", "tie"]

_THINKING = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL | re.IGNORECASE)
_JSON = re.compile(r"\{[^{}]*\}")
_NUM = r"(\d+(?:\.\d+)?)"
_OUT_OF = r"\s*(?:/|(?i:out of))\s*(\d+)"
_LABELLED_SCORE = re.compile(
    r"(?i:score|rating|grade)(?:\s*\(\s*\d+\s*[-–]\s*\d+\s*\))?\W{0,8}?" + _NUM + f"(?:{_OUT_OF})?"
)
_FRACTION = re.compile(r"(?<![\d.])" + _NUM + _OUT_OF + r"(?![\d.])")
_BARE_SCORE = re.compile(r"^\W*" + _NUM + r"\W*$")

_SIDE = r"(A|B|(?i:tie))\b"
_BRACKETED = re.compile(r"\[\[\s*(A|B|C|(?i:tie))\s*\]\]")
# A label needs its colon (or "is"): "Response B is better. A is verbose" names no winner A.
_LABELLED_VERDICT = re.compile(
    r"(?i:verdict|winner|better answer|better response|preferred|preference)"
    r"(?:[\s*]*[:=][\s*]*|\s+(?i:is)\s+)(?:(?i:answer|response|assistant)\s+)?" + _SIDE
)
_NAMED_WINNER = re.compile(r"(?i:answer|response|assistant)\s+(A|B)\s+(?i:is better|wins|is preferred)")
_BARE_VERDICT = re.compile(r"^\W*(A|B|a|b|(?i:tie))\W*$")


def _visible(text: str) -> str:
    """The judgement without a reasoning model's <think> block (it may quote any format)."""
    return _THINKING.sub("", text).strip()


def _json_field(text: str, keys: tuple[str, ...]) -> object | None:
    for blob in reversed(_JSON.findall(text)):
        try:
            record = json.loads(blob)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            lowered = {str(k).lower(): v for k, v in record.items()}
            for key in keys:
                if key in lowered:
                    return lowered[key]
    return None


def _on_scale(value: float, out_of: str | None, low: int, high: int) -> float | None:
    """`value` mapped from [low, high] to [0, 1]; None when off the scale or out of another."""
    if out_of is not None and int(out_of) != high:
        return None
    if not low <= value <= high:
        return None
    return (value - low) / (high - low)


def parse_score(text: str, low: int = 1, high: int = 5) -> float | None:
    """The judge's score mapped to [0, 1], or None when the text holds none on the scale."""
    text = _visible(text)
    field = _json_field(text, ("score", "rating"))
    if field is not None:
        try:
            return _on_scale(float(field), None, low, high)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
    for pattern in (_LABELLED_SCORE, _FRACTION, _BARE_SCORE):
        found = list(pattern.finditer(text))
        if found:
            last = found[-1]
            out_of = last.group(2) if last.re.groups > 1 else None
            return _on_scale(float(last.group(1)), out_of, low, high)
    return None


def _side(raw: str) -> Verdict | None:
    side = raw.strip().upper()
    if side in ("A", "B"):
        return side  # type: ignore[return-value]
    return "tie" if side in ("TIE", "C") else None


def parse_verdict(text: str) -> Verdict | None:
    """Which answer the judge preferred: "A", "B" or "tie"; None when it does not say."""
    text = _visible(text)
    field = _json_field(text, ("winner", "verdict", "better", "preferred"))
    if field is not None:
        return _side(str(field))
    for pattern in (_BRACKETED, _LABELLED_VERDICT, _NAMED_WINNER, _BARE_VERDICT):
        found = pattern.findall(text)
        if found:
            return _side(found[-1])
    return None
