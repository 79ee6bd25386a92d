"""What the gate decides for one message: the seam between the classifier (gate/) and
the HTTP edge that acts on it (gateway/)."""

from __future__ import annotations

from typing import Literal, Mapping, Protocol

from pydantic import BaseModel, Field

GateLabel = Literal["answerable", "chitchat", "no_context"]


class GateVerdict(BaseModel):
    label: GateLabel = Field(description="answerable: route it; otherwise the hand-off text answers")
    scores: dict[str, float] = Field(description="Calibrated probability of each class")
    threshold: float = Field(description="The threshold applied (the category's, else the default)")

    @property
    def gated(self) -> bool:
        return self.label != "answerable"


class Gate(Protocol):
    """Classifies one user message. CPU work: callers run it off the event loop."""

    def classify(self, text: str, category: str | None, thresholds: "GateThresholds") -> GateVerdict: ...


class GateThresholds(BaseModel):
    """Minimum probability of a not-answerable class before a message is gated; a high
    threshold refuses rarely (precision over recall: refusing a real question is worse)."""

    default: float = Field(0.5, gt=0, le=1)
    categories: Mapping[str, float] = Field(default_factory=dict, description="category -> threshold")

    def for_category(self, category: str | None) -> float:
        return self.categories.get(category or "", self.default)
