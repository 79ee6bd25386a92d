"""Personal data in an answer: e-mail addresses, card numbers, phone numbers.

A card number is 13-19 digits (spaces or dashes between groups) that pass the Luhn
check, so order numbers and amounts do not count. A phone number needs a phone's shape
(a leading +, a bracketed area code, or digit groups split by spaces, dots or dashes,
7-15 digits in all), so a bare reference number does not count either. Whatever is found
is masked in the flag: the store of flags must not become a second copy of the data.
"""

from __future__ import annotations

import re

from flags.config import PiiConfig
from flags.types import Answer, Flag, Kind

EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}(?![\w-])")
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}(?!\w)|"
    r"(?<![\w+])\+\d{7,15}(?!\w)"
)


def luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char) * (2 if i % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


_DATE = re.compile(r"\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")
_NUMBER_RUN = re.compile(r"\+?[\d(][\d ().-]{5,}\d")
PHONE_KEY_DIGITS = 9  # a national number's last digits: "+1 555…" and "555…" are the same phone


def _looks_like_phone(match: str) -> bool:
    if _DATE.fullmatch(match):
        return False
    digits = _digits(match)
    shaped = match.startswith("+") or "(" in match or len(re.findall(r"\d+", match)) >= 3
    return 7 <= len(digits) <= 15 and shaped


def mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_digits(value: str) -> str:
    digits = _digits(value)
    return f"***{digits[-4:]}" if len(digits) > 4 else "***"


class PiiEvaluator:
    kind: Kind = "pii"

    def __init__(self, config: PiiConfig) -> None:
        self._config = config

    def evaluate(self, answer: Answer) -> list[Flag]:
        found: list[tuple[str, str, str]] = []  # (what, value, masked)
        if self._config.emails:
            found += [("email", m, mask_email(m)) for m in EMAIL.findall(answer.text)]
        text = EMAIL.sub(" ", answer.text)  # digits inside an address are not a phone
        cards = [m for m in CARD.findall(text) if luhn(_digits(m))] if self._config.cards else []
        found += [("card", m, mask_digits(m)) for m in cards]
        if self._config.phones:
            for card in cards:
                text = text.replace(card, " ")
            found += [("phone", m, mask_digits(m)) for m in PHONE.findall(text) if _looks_like_phone(m)]
        return [flag for what, value, masked in found if (flag := self._flag(answer, what, value, masked))]

    def _flag(self, answer: Answer, what: str, value: str, masked: str) -> Flag | None:
        echoed = _key(what, value) in _keys(what, answer.user_text)
        if self._config.only_echoed and not echoed:
            return None
        origin = "echoed from the customer's message" if echoed else "not in the customer's message"
        # Echoed data scores higher: the answer repeats what the customer typed, to them or a log.
        return Flag(kind="pii", score=1.0 if echoed else 0.5, detail=f"{what} {masked} ({origin})")


def _key(what: str, value: str) -> str:
    if what == "email":
        return value.lower()
    digits = _digits(value)
    return digits[-PHONE_KEY_DIGITS:] if what == "phone" else digits


def _keys(what: str, text: str) -> set[str]:
    """The same kind of data in the customer's message, normalised like `_key`."""
    if what == "email":
        return {m.lower() for m in EMAIL.findall(text)}
    return {_key(what, m) for m in _NUMBER_RUN.findall(text)}
