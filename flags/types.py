"""The seam of this package: an answer in, flags out."""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel, Field

Kind = Literal["promise", "tone", "pii", "unfaithful"]
KINDS: tuple[Kind, ...] = ("promise", "tone", "pii", "unfaithful")


class Passage(BaseModel):
    """A knowledge-base chunk the answer was grounded on."""

    id: str
    text: str


class Answer(BaseModel):
    """A served answer and what it answered."""

    request_id: str
    text: str
    user_text: str = Field("", description="The customer's message (its last user turn)")
    category: str = ""
    tier: str = ""
    passages: list[Passage] | None = Field(None, description="Grounding context; None = ungrounded")


class Flag(BaseModel):
    kind: Kind
    detail: str = Field(description="Which rule and what it saw (personal data masked)")
    score: float | None = Field(None, description="The measured value: an amount, hours, a support score…")


class Evaluator(Protocol):
    kind: Kind

    def evaluate(self, answer: Answer) -> list[Flag]:
        """Flags for this answer ([] when it is fine); pure, may be slow (runs off the loop)."""
        ...
