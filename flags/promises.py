"""Promises the policy does not allow: refund amounts above its maximum, turnarounds it
does not state, dates, and guarantees.

Only commitments count: a sentence is judged when it commits ("we will", "you'll
receive", "guaranteed", …). "Refunds usually take 3 days" informs; "you will get your
refund within 3 days" promises.
"""

from __future__ import annotations

import re

from flags.config import PromisePolicy
from flags.durations import Span, dates, parse_span, spans
from flags.sentences import sentences
from flags.types import Answer, Flag, Kind

_COMMITMENT = re.compile(
    r"\b(will|shall|going to|guarantee[ds]?|promise[ds]?|assure|ensure|can expect|should (?:receive|get|see))\b|"
    r"\b\w+'ll\b",
    re.IGNORECASE,
)
_MONEY = re.compile(
    r"(?:[$€£]|\b(?:usd|eur|gbp)\s?)\s?(\d[\d,]*(?:\.\d+)?)|"
    r"\b(\d[\d,]*(?:\.\d+)?)\s?(?:dollars|usd|euros?|eur|pounds|gbp)\b",
    re.IGNORECASE,
)
_REFUND = re.compile(
    r"\b(refund\w*|reimburs\w*|credit\w*|compensat\w*|money back|pay you|voucher|rebate|discount)\b", re.IGNORECASE
)
# A guarantee negated within a few words before it is a refusal to promise: fine.
_NEGATION = re.compile(r"\b(?:not|no|never|cannot|cant|unable|\w*n't)\b(?:\W+\w+){0,3}\W*$", re.IGNORECASE)


class PromiseEvaluator:
    kind: Kind = "promise"

    def __init__(self, policy: PromisePolicy) -> None:
        self._policy = policy
        self._allowed = [parse_span(text) for text in policy.allowed_durations]
        phrases = sorted(policy.guarantee_phrases, key=len, reverse=True)
        self._guarantee = re.compile(
            "|".join(rf"(?<!\w){re.escape(p)}(?!\w)" for p in phrases) or r"(?!x)x", re.IGNORECASE
        )

    def evaluate(self, answer: Answer) -> list[Flag]:
        flags: list[Flag] = []
        for sentence in sentences(answer.text):
            flags += self._guarantees(sentence)
            if _COMMITMENT.search(sentence):
                flags += self._amounts(sentence) + self._durations(sentence) + self._dates(sentence)
        return flags

    def _amounts(self, sentence: str) -> list[Flag]:
        if not _REFUND.search(sentence):
            return []
        flags = []
        for match in _MONEY.finditer(sentence):
            amount = float((match.group(1) or match.group(2)).replace(",", ""))
            limit = self._policy.max_refund_amount
            if amount > limit:
                stated = match.group(0).strip()
                flags.append(Flag(kind="promise", score=amount, detail=f"amount: promised {stated} (policy maximum {limit:g})"))
        return flags

    def _durations(self, sentence: str) -> list[Flag]:
        return [
            Flag(kind="promise", score=span.high, detail=f"duration: promised '{span.text}' "
                 f"(allowed: {', '.join(self._policy.allowed_durations) or 'none'})")
            for span in spans(sentence) if not self._allows(span)
        ]

    def _allows(self, span: Span) -> bool:
        return any(span.within(allowed) for allowed in self._allowed)

    def _dates(self, sentence: str) -> list[Flag]:
        if self._policy.allow_dates:
            return []
        return [Flag(kind="promise", score=None, detail=f"date: promised '{text}'") for text in dates(sentence)]

    def _guarantees(self, sentence: str) -> list[Flag]:
        flags = []
        for match in self._guarantee.finditer(sentence):
            if _NEGATION.search(sentence[: match.start()]):
                continue
            flags.append(Flag(kind="promise", score=None, detail=f"guarantee: '{match.group(0)}'"))
        return flags
