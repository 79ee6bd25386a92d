"""Durations and dates as an answer states them: "within 24 hours", "3-5 business days",
"in a week", "immediately", "by Monday", "on March 3".

A duration is a range in hours (a business day counts as a day: the policy states
business days and so do answers; comparing them as calendar days would shift both alike).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14, "fifteen": 15,
    "twenty": 20, "twenty-four": 24, "thirty": 30, "forty-eight": 48, "seventy-two": 72,
}
_HOURS = {"minute": 1 / 60, "hour": 1.0, "day": 24.0, "week": 168.0, "month": 720.0}
_NUMBER = r"(\d+(?:\.\d+)?|" + "|".join(sorted(map(re.escape, _WORDS), key=len, reverse=True)) + r")"
_SPAN = re.compile(
    rf"\b{_NUMBER}(?:\s*(?:-|–|to|or)\s*{_NUMBER})?\s*(?:business\s+|working\s+|calendar\s+)?"
    r"(minute|hour|day|week|month)s?\b",
    re.IGNORECASE,
)
_INSTANT = re.compile(
    r"\b(immediately|instantly|right away|right now|straight away|today|tonight|tomorrow|"
    r"by (?:the )?end of (?:the )?(?:day|business day)|within the hour)\b",
    re.IGNORECASE,
)
_INSTANT_HOURS = {"today": 24.0, "tonight": 24.0, "tomorrow": 48.0, "within the hour": 1.0}
_WEEKDAY = r"monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_MONTH = r"january|february|march|april|may|june|july|august|september|october|november|december"
_DATE = re.compile(
    rf"\b(?:by|on|before|until)\s+(?:next\s+|this\s+)?(?:{_WEEKDAY})\b|"
    rf"\b(?:by|on|before|until)\s+(?:the\s+)?(?:\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTH})|"
    rf"(?:{_MONTH})\s+\d{{1,2}}(?:st|nd|rd|th)?)\b|"
    r"\b(?:by|on|before|until)\s+\d{1,2}[/.]\d{1,2}(?:[/.]\d{2,4})?\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Span:
    """A stated duration: `low`..`high` hours, and the words that stated it."""

    low: float
    high: float
    text: str

    def within(self, allowed: "Span") -> bool:
        return allowed.low <= self.low and self.high <= allowed.high


def _number(token: str) -> float:
    token = token.lower()
    return _WORDS[token] if token in _WORDS else float(token)


# "24 hours a day", "7 days a week", "24/7": how often, not how long.
_FREQUENCY = re.compile(r"\b\w+\s+(?:hours?|days?)\s+(?:a|per|each)\s+(?:day|week)\b|\b24/7\b", re.IGNORECASE)


def spans(text: str) -> list[Span]:
    """Every duration stated in `text`, in order."""
    text = _FREQUENCY.sub(lambda m: " " * len(m.group(0)), text)
    found: list[tuple[int, Span]] = []
    for match in _SPAN.finditer(text):
        unit = _HOURS[match.group(3).lower()]
        low = _number(match.group(1)) * unit
        high = _number(match.group(2)) * unit if match.group(2) else low
        found.append((match.start(), Span(min(low, high), max(low, high), match.group(0))))
    for match in _INSTANT.finditer(text):
        phrase = match.group(1).lower()
        hours = _INSTANT_HOURS.get(phrase, 24.0 if phrase.startswith("by") else 0.0)
        found.append((match.start(), Span(0.0, hours, match.group(0))))
    return [span for _, span in sorted(found, key=lambda item: item[0])]


def dates(text: str) -> list[str]:
    """Calendar dates and weekdays promised ("by Monday", "on March 3")."""
    return [match.group(0) for match in _DATE.finditer(text)]


def parse_span(text: str) -> Span:
    """One configured duration, e.g. "5-10 business days"; ValueError when there is none."""
    found = spans(text)
    if len(found) != 1:
        raise ValueError(f"'{text}' is not one duration (e.g. '5-10 business days', '24 hours')")
    return found[0]
