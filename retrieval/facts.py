"""The checkable facts of a sentence: durations, amounts, percentages, opening hours,
counts, and whether a policy is stated or denied.

Values are normalised so that two ways of writing one fact compare equal: "14 days" =
"two weeks", "$5" = "5 USD" = "five dollars", "50%" = "50 percent", "9 AM to 5 PM" =
"9:00-17:00", "3-5 business days" = "three to five business days". `masked` is the
sentence with its values replaced by one token (and negations dropped): two sentences
stating the same kind of fact with different values then read alike, which is what the
contradiction check aligns on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_UNITS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
          "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
          "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_WORD_NUMBER = (
    r"(?:(?:" + "|".join(_TENS) + r")(?:[- ](?:" + "|".join(k for k in _UNITS if _UNITS[k] < 10 and k != "zero")
    + r"))?|" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r"|a hundred|one hundred|hundred)"
)
_DIGITS = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
NUM = rf"(?:{_DIGITS}|{_WORD_NUMBER})"

# Hours per unit; business days count apart (a business week is 5 of them).
_TIME_UNITS = {"minute": 1 / 60, "min": 1 / 60, "hour": 1.0, "hr": 1.0, "day": 24.0, "week": 168.0,
               "month": 720.0, "year": 8760.0}
_UNIT = r"(?P<unit>minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?)"
_CURRENCY_SYMBOL = {"$": "USD", "us$": "USD", "€": "EUR", "£": "GBP"}
_CURRENCY_WORD = {"usd": "USD", "dollar": "USD", "dollars": "USD", "eur": "EUR", "euro": "EUR", "euros": "EUR",
                  "gbp": "GBP", "pound": "GBP", "pounds": "GBP"}
_DAYS = {"monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5, "saturday": 6, "sunday": 7,
         "mon": 1, "tue": 2, "tues": 2, "wed": 3, "thu": 4, "thur": 4, "thurs": 4, "fri": 5, "sat": 6, "sun": 7}
_DAY = r"(?:" + "|".join(sorted(_DAYS, key=len, reverse=True)) + r")\.?"
_CLOCK = r"(?:\d{1,2}(?::\d{2})?\s*(?:am|pm)|\d{1,2}:\d{2}|noon|midnight)"
_RANGE = r"\s*(?:-|–|—|to|until|till|through|thru)\s*"
_NEGATION = re.compile(
    r"\b(?:not|no|never|cannot|can't|won't|isn't|aren't|don't|doesn't|didn't|unable|non|nor)\b|n't\b", re.I
)
_POLICY = re.compile(
    r"\b(?:refund\w*|return\w*|eligible|allowed|permitted|accept\w*|exchang\w*|cancel\w*|charge\w*|fees?|"
    r"(?<!feel )free|waive\w*|possible|available|required|transferable|guarantee\w*|expire\w*|valid)\b", re.I
)
VALUE = "<v>"


@dataclass(frozen=True)
class Quantity:
    """`kind` says what can be compared with what: duration (hours), business_days,
    money:<currency> (money:ANY = free), percent, hours (a time-of-day span in minutes),
    weekdays (1 = Monday), count:<noun>."""

    kind: str
    low: float
    high: float

    def same(self, other: "Quantity", tolerance: float = 0.03) -> bool:
        return _close(self.low, other.low, tolerance) and _close(self.high, other.high, tolerance)

    def text(self) -> str:
        value = f"{self.low:g}" if self.low == self.high else f"{self.low:g}-{self.high:g}"
        return f"{self.kind}={value}"


@dataclass(frozen=True)
class Facts:
    sentence: str
    masked: str
    quantities: tuple[Quantity, ...] = field(default_factory=tuple)
    negated: bool = False  # odd number of negations
    policy: bool = False  # states a policy (refunds, fees, eligibility…) that can be affirmed or denied

    @property
    def checkable(self) -> bool:
        return bool(self.quantities) or self.policy


def _close(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= tolerance * max(abs(a), abs(b), 1e-9)


def number(text: str) -> float:
    """A number written in digits ("1,250.5") or words ("twenty-four", "a hundred")."""
    value = text.strip().lower().replace(",", "")
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    if value in ("a hundred", "one hundred", "hundred"):
        return 100.0
    if value in _UNITS:
        return float(_UNITS[value])
    parts = re.split(r"[- ]", value)
    return float(_TENS[parts[0]] + (_UNITS[parts[1]] if len(parts) > 1 else 0))


def split_sentences(text: str) -> list[str]:
    """Sentences and list items; "a.m."/"p.m." and decimals do not end a sentence."""
    text = re.sub(r"\b([ap])\.m\.", r"\1m", text, flags=re.I)
    pieces = re.split(r"\n+|(?<=[.!?])\s+(?=[\"'(*\[]?[A-Z0-9])", text)
    sentences = []
    for piece in pieces:
        piece = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", piece).strip(" *\t")
        if len(piece) > 3:
            sentences.append(piece)
    return sentences


class _Scanner:
    """Finds quantities left to right, blanking each match so no value is read twice."""

    def __init__(self, sentence: str) -> None:
        self.text = sentence.lower()
        self.masked = sentence
        self.found: list[tuple[int, Quantity]] = []

    def scan(self, pattern: str, make) -> None:  # noqa: ANN001 - a small local callback
        for match in list(re.finditer(pattern, self.text, flags=re.I)):
            if "\0" in self.text[match.start():match.end()]:
                continue  # overlaps a value already read
            quantity = make(match)
            if quantity is None:
                continue
            self.found.append((match.start(), quantity))
            self._blank(match.start(), match.end())

    def _blank(self, start: int, end: int) -> None:
        width = end - start
        self.text = self.text[:start] + "\0" * width + self.text[end:]
        self.masked = self.masked[:start] + "\0" * width + self.masked[end:]

    def result(self) -> tuple[tuple[Quantity, ...], str]:
        masked = re.sub(r"\0+", VALUE, self.masked)
        return tuple(q for _, q in sorted(self.found, key=lambda f: f[0])), masked


def facts(sentence: str) -> Facts:
    sentence = re.sub(r"\b([ap])\.m\.", r"\1m", sentence, flags=re.I)
    scanner = _Scanner(sentence)
    scanner.scan(r"\b24\s*/\s*7\b|\baround the clock\b|\b24 hours a day(?:,? 7 days a week)?",
                 lambda m: Quantity("hours", 0, 1440))
    scanner.scan(rf"\b(?P<a>{_CLOCK}){_RANGE}(?P<b>{_CLOCK})", _clock_range)
    scanner.scan(rf"\b(?P<a>{_DAY}){_RANGE}(?P<b>{_DAY})", _day_range)
    scanner.scan(r"\b(?:on )?weekdays\b", lambda m: Quantity("weekdays", 1, 5))
    scanner.scan(r"\b(?:seven|7) days a week\b|\bevery day\b", lambda m: Quantity("weekdays", 1, 7))
    scanner.scan(rf"(?P<cur>us\$|\$|€|£)\s?(?P<a>{_DIGITS})", _money_symbol)
    scanner.scan(rf"\b(?P<a>{NUM})\s?(?P<cur>usd|eur|gbp|dollars?|euros?|pounds?)\b", _money_word)
    scanner.scan(rf"\b(?P<cur>usd|eur|gbp)\s?(?P<a>{_DIGITS})\b", _money_word)
    scanner.scan(r"(?<!feel )(?<![-\w])\bfree(?: of charge)?\b(?!-)|\bat no (?:extra |additional )?(?:cost|charge)\b"
                 r"|\bno (?:cancellation |extra |additional )?(?:fee|charge)s?\b", lambda m: Quantity("money:ANY", 0, 0))
    scanner.scan(rf"\b(?P<a>{NUM})\s?(?:%|percent\b|per cent\b)", _percent)
    scanner.scan(rf"\b(?:between\s+)?(?P<a>{NUM})(?:{_RANGE.replace('until|till|', '')}|\s+and\s+)(?P<b>{NUM})[\s-]+"
                 rf"(?P<biz>business |working )?{_UNIT}\b", _duration)
    scanner.scan(rf"\b(?P<a>{NUM}|an?)[\s-]+(?P<biz>business |working )?{_UNIT}\b", _duration)
    scanner.scan(r"\bnext (?:business|working) day\b", lambda m: Quantity("business_days", 1, 1))
    scanner.scan(r"\bsame[- ]day\b", lambda m: Quantity("duration", 0, 0))
    scanner.scan(rf"(?<![#\d.,:/-])\b(?P<a>\d+|{'|'.join(k for k in _UNITS if 2 <= _UNITS[k] <= 12)})\s+"
                 r"(?P<noun>[a-z]{3,})\b(?![-/]\d)", _count)
    quantities, masked = scanner.result()
    negations = len(_NEGATION.findall(sentence))
    masked = re.sub(r"\s+", " ", _NEGATION.sub(_affirmed, masked)).strip()
    return Facts(
        sentence=sentence, masked=masked, quantities=quantities, negated=negations % 2 == 1,
        policy=bool(_POLICY.search(sentence)),
    )


_AFFIRMED = {"cannot": "can", "can't": "can", "won't": "will", "isn't": "is", "aren't": "are", "don't": "do",
             "doesn't": "does", "didn't": "did", "unable": "able"}


def _affirmed(match: re.Match[str]) -> str:
    """What a negation leaves in the masked sentence: "cannot" reads as "can", "not" as nothing."""
    word = match.group(0).lower()
    return f" {_AFFIRMED[word]} " if word in _AFFIRMED else " "


def _clock(text: str) -> float | None:
    value = text.strip().lower().replace(" ", "")
    if value == "noon":
        return 720.0
    if value == "midnight":
        return 0.0
    match = re.fullmatch(r"(\d{1,2})(?::(\d{2}))?(am|pm)?", value)
    if match is None:
        return None
    hour, minute, half = int(match.group(1)), int(match.group(2) or 0), match.group(3)
    if half == "pm" and hour != 12:
        hour += 12
    elif half == "am" and hour == 12:
        hour = 0
    return float(hour * 60 + minute) if hour <= 24 and minute < 60 else None


def _clock_range(match: re.Match[str]) -> Quantity | None:
    start, end = _clock(match.group("a")), _clock(match.group("b"))
    if start is None or end is None:
        return None
    if end == 0:
        end = 1440.0  # "to midnight"
    return Quantity("hours", start, end)


def _day_range(match: re.Match[str]) -> Quantity:
    first, last = (_DAYS[match.group(g).rstrip(".")] for g in ("a", "b"))
    return Quantity("weekdays", first, last)


def _money_symbol(match: re.Match[str]) -> Quantity:
    amount = number(match.group("a"))
    return Quantity(f"money:{_CURRENCY_SYMBOL[match.group('cur')]}", amount, amount)


def _money_word(match: re.Match[str]) -> Quantity:
    amount = number(match.group("a"))
    return Quantity(f"money:{_CURRENCY_WORD[match.group('cur')]}", amount, amount)


def _percent(match: re.Match[str]) -> Quantity:
    value = number(match.group("a"))
    return Quantity("percent", value, value)


def _duration(match: re.Match[str]) -> Quantity | None:
    raw = match.group("a")
    low = 1.0 if raw in ("a", "an") else number(raw)
    high = number(match.group("b")) if "b" in match.groupdict() and match.group("b") else low
    if high < low:
        return None  # not a range: "twenty-four hours" read as twenty to four
    unit = match.group("unit").rstrip("s")
    if match.group("biz"):
        scale = 5.0 if unit == "week" else 1.0 if unit == "day" else None
        if scale is not None:
            return Quantity("business_days", low * scale, high * scale)
    scale = _TIME_UNITS[unit]
    return Quantity("duration", low * scale, high * scale)


def _count(match: re.Match[str]) -> Quantity | None:
    noun = match.group("noun")
    if noun in _STOP_NOUNS:
        return None
    value = number(match.group("a"))
    if 1900 <= value <= 2100:
        return None  # a year, not a count
    return Quantity(f"count:{noun.rstrip('s')}", value, value)


_STOP_NOUNS = {"and", "the", "for", "are", "was", "were", "you", "your", "our", "that", "this", "with", "from",
               "have", "has", "will", "can", "may", "more", "less", "than", "times", "other", "ways", "steps"}


# Mutually exclusive conditions: a fee "after shipping" and one "before shipping" are two
# facts, not one fact stated twice. Each group lists its alternatives.
_CONDITIONS = tuple(
    tuple(re.compile(rf"\b(?:{alternative})\b", re.I) for alternative in group)
    for group in (
        ("before|prior to|until", "after|once"),
        ("standard|regular|economy", "expedited|express|overnight|priority|faster"),
        ("domestic", "international|overseas"),
        ("over|above|more than|at least|minimum", "under|below|less than|at most|maximum"),
        ("first", "second|subsequent|additional"),
        ("new", "existing|returning"),
    )
)


def same_conditions(a: str, b: str) -> bool:
    """False when the sentences name different alternatives of a condition (before vs
    after, standard vs express...); True when they name the same or cannot be told apart."""
    for group in _CONDITIONS:
        left = {i for i, pattern in enumerate(group) if pattern.search(a)}
        right = {i for i, pattern in enumerate(group) if pattern.search(b)}
        if left and right and not left & right:
            return False
    return True


def conflicts(a: Facts, b: Facts) -> list[tuple[str, tuple[Quantity, ...], tuple[Quantity, ...]]]:
    """The kinds of fact both sentences state with different values; a denied policy
    against an affirmed one when they state no comparable value. Nothing when the two
    state their facts under different conditions."""
    if not same_conditions(a.sentence, b.sentence):
        return []
    found = []
    for kind in _comparable_kinds(a, b):
        mine, theirs = _of_kind(a, kind), _of_kind(b, kind)
        if not _same_values(mine, theirs):
            found.append((kind, mine, theirs))
    if not found and a.policy and b.policy and a.negated != b.negated and not _comparable_kinds(a, b):
        found.append(("policy", (), ()))
    return found


def _family(kind: str) -> str:
    return "money" if kind.startswith("money:") else kind


def _comparable_kinds(a: Facts, b: Facts) -> list[str]:
    kinds_a = {_family(q.kind) for q in a.quantities}
    kinds_b = {_family(q.kind) for q in b.quantities}
    return sorted(kinds_a & kinds_b)


def _of_kind(facts_: Facts, family: str) -> tuple[Quantity, ...]:
    return tuple(q for q in facts_.quantities if _family(q.kind) == family)


def _same_values(mine: tuple[Quantity, ...], theirs: tuple[Quantity, ...]) -> bool:
    """Every value of one is stated by the other (order and repetition aside); money of
    different currencies is not compared (no exchange rates), "free" matches any currency."""
    return all(any(_match(q, o) for o in theirs) for q in mine) and all(any(_match(o, q) for q in mine) for o in theirs)


def _match(a: Quantity, b: Quantity) -> bool:
    if a.kind != b.kind and not ("money:ANY" in (a.kind, b.kind)):
        return a.kind.startswith("money:") and b.kind.startswith("money:")  # other currency: not comparable
    return a.same(b)
