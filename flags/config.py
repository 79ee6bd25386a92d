"""The live `user_config.flags` section: which answers are checked, and each evaluator's
policy and threshold. Off by default: ops turn it on and choose the sample."""

from __future__ import annotations

from text.category import normalise_category
from pydantic import BaseModel, ConfigDict, Field, field_validator

from flags.durations import parse_span

DEFAULT_GUARANTEES = [
    "guarantee", "guaranteed", "guarantees", "we promise", "i promise", "full refund",
    "no questions asked", "without fail",
]


class PromisePolicy(BaseModel):
    """What an answer may commit the company to; any other commitment is flagged."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    max_refund_amount: float = Field(
        0.0, ge=0, description="Largest refund, credit or compensation an answer may promise (0: none)"
    )
    allowed_durations: list[str] = Field(
        default_factory=lambda: ["5-10 business days"],
        description="Turnarounds an answer may promise; a promised duration outside all of them is flagged",
    )
    allow_dates: bool = Field(False, description="May an answer promise a date or weekday ('by Monday')")
    guarantee_phrases: list[str] = Field(
        default_factory=lambda: list(DEFAULT_GUARANTEES),
        description="Words of guarantee flagged unless negated ('we cannot guarantee' is fine)",
    )

    @field_validator("allowed_durations")
    @classmethod
    def _parseable(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_span(text)  # raises with the offending text
        return value


class ToneConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    extra_terms: list[str] = Field(
        default_factory=list, description="More rude words or phrases (lower case), added to the lexicon"
    )
    min_hits: int = Field(1, ge=1, description="Lexicon hits that flag an answer")


class PiiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    emails: bool = True
    cards: bool = Field(True, description="13-19 digits with a card network's prefix that pass the Luhn check")
    phones: bool = True
    only_echoed: bool = Field(
        False, description="Flag only personal data that also appears in the customer's message"
    )


class FaithfulnessConfig(BaseModel):
    """Grounded answers only: each sentence's best support among the sentences of the
    chunks it cited (all chunks of the context when it cites none)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    min_support: float = Field(
        0.35, ge=-1, le=1, description="A sentence whose best MiniLM cosine is below this is unsupported"
    )
    max_unsupported_share: float = Field(
        0.5, ge=0, lt=1, description="The answer is flagged when more of its sentences than this are unsupported"
    )
    min_words: int = Field(4, ge=1, description="Shorter sentences (greetings, 'Thank you!') are not judged")


class FlagsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="Check a sample of served answers")
    sample_rate: float = Field(0.1, ge=0.0, le=1.0, description="Share of served answers checked")
    categories: list[str] = Field(
        default_factory=list, description="Check only these request categories (client's or adapter domain); [] = all"
    )
    queue_size: int = Field(256, ge=1, description="Checks waiting; beyond it an answer goes unchecked (counted)")
    promise: PromisePolicy = Field(default_factory=PromisePolicy)
    tone: ToneConfig = Field(default_factory=ToneConfig)
    pii: PiiConfig = Field(default_factory=PiiConfig)
    faithfulness: FaithfulnessConfig = Field(default_factory=FaithfulnessConfig)

    @field_validator("categories")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [normalise_category(category) or category for category in value]

    def wants(self, category: str) -> bool:
        return not self.categories or (normalise_category(category) or "") in self.categories
