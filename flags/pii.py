"""Personal data in an answer: e-mail addresses, card numbers, phone numbers.

Numbers are judged as whole runs (digit groups joined by single spaces, dots, dashes or
brackets), so a list of years or amounts is one long run, not a phone. A run is a card
number when it has 13-19 digits, starts with a card network's prefix (Visa, Mastercard,
Amex, Discover, JCB, Diners, UnionPay) and passes the Luhn check; a phone number when it
has 7-15 digits and a phone's shape (a leading +, a bracketed area code, or at least
three groups) and is not a date. Whatever is found is masked in the flag: the store of
flags must not become a second copy of the data.
"""

from __future__ import annotations

import re

from flags.config import PiiConfig
from flags.types import Answer, Flag, Kind

EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}(?![\w-])")
NUMBER_RUN = re.compile(r"(?<![\w+])\+?\(?\d(?:[\d().-]| (?=[\d(]))*\d\)?(?!\w)")
CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)|3[47]|3[05689]|6(?:011|4[4-9]|5|2))")
_DATE = re.compile(r"\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")
PHONE_KEY_DIGITS = 9  # a national number's last digits: "+1 555…" and "555…" are the same phone


def luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char) * (2 if i % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def digits_of(text: str) -> str:
    return re.sub(r"\D", "", text)


def is_card(run: str) -> bool:
    digits = digits_of(run)
    return 13 <= len(digits) <= 19 and bool(CARD_PREFIX.match(digits)) and luhn(digits)


def is_phone(run: str) -> bool:
    if _DATE.fullmatch(run.strip("()")):
        return False
    shaped = run.startswith("+") or "(" in run or len(re.findall(r"\d+", run)) >= 3
    return 7 <= len(digits_of(run)) <= 15 and shaped


def mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_digits(value: str) -> str:
    digits = digits_of(value)
    return f"***{digits[-4:]}" if len(digits) > 4 else "***"


def personal_data(text: str, config: PiiConfig) -> list[tuple[str, str]]:
    """(what, value) of each e-mail, card and phone in `text`, in that order."""
    found = [("email", m) for m in EMAIL.findall(text)] if config.emails else []
    runs = NUMBER_RUN.findall(EMAIL.sub(" ", text))  # digits inside an address are no phone
    found += [("card", run) for run in runs if config.cards and is_card(run)]
    found += [("phone", run) for run in runs if config.phones and not is_card(run) and is_phone(run)]
    return found


class PiiEvaluator:
    kind: Kind = "pii"

    def __init__(self, config: PiiConfig) -> None:
        self._config = config

    def evaluate(self, answer: Answer) -> list[Flag]:
        first: dict[tuple[str, str], str] = {}  # one flag per item, however often it is repeated
        for what, value in personal_data(answer.text, self._config):
            first.setdefault((what, _key(what, value)), value)
        flags = (self._flag(answer, what, value) for (what, _), value in first.items())
        return [flag for flag in flags if flag is not None]

    def _flag(self, answer: Answer, what: str, value: str) -> Flag | None:
        echoed = _key(what, value) in _keys(what, answer.user_text)
        if self._config.only_echoed and not echoed:
            return None
        masked = mask_email(value) if what == "email" else mask_digits(value)
        origin = "echoed from the customer's message" if echoed else "not in the customer's message"
        # Echoed data scores higher: the answer repeats what the customer typed, to them or a log.
        return Flag(kind="pii", score=1.0 if echoed else 0.5, detail=f"{what} {masked} ({origin})")


def _key(what: str, value: str) -> str:
    if what == "email":
        return value.lower()
    digits = digits_of(value)
    return digits[-PHONE_KEY_DIGITS:] if what == "phone" else digits


def _keys(what: str, text: str) -> set[str]:
    """The same kind of data in the customer's message, normalised like `_key` (the
    customer may have typed it in another shape: no spaces, another separator)."""
    if what == "email":
        return {m.lower() for m in EMAIL.findall(text)}
    return {_key(what, run) for run in NUMBER_RUN.findall(EMAIL.sub(" ", text))}
