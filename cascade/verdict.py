"""Keep the cheap answer or escalate: a pure comparison of one confidence figure."""

from __future__ import annotations

from pydantic import BaseModel

from cascade.config import CascadeConfig, Signal
from engines.confidence import AnswerConfidence


class Verdict(BaseModel):
    escalate: bool
    signal: Signal
    value: float | None  # None: the answer had no logprobs to read (escalated: nothing vouches for it)
    threshold: float

    def describe(self) -> str:
        """For the response header, e.g. `mean_logprob=-0.912<-0.35`."""
        if self.value is None:
            return f"{self.signal}=none"
        return f"{self.signal}={self.value:.4g}{'<' if self.escalate else '>='}{self.threshold:.4g}"


def judge(config: CascadeConfig, confidence: AnswerConfidence | None, tier: str | None = None) -> Verdict:
    """`tier`'s answer against its own bar (`per_tier`), else the shared `threshold`."""
    value = getattr(confidence, config.signal) if confidence is not None else None
    threshold = config.per_tier.get(tier, config.threshold) if tier is not None else config.threshold
    escalate = value is None or value < threshold
    return Verdict(escalate=escalate, signal=config.signal, value=value, threshold=threshold)
