"""Keep the cheap answer or escalate: a pure comparison of one confidence figure."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from cascade.config import CascadeConfig, Signal
from cascade.verifier import VerifierInput, VerifierModel
from engines.confidence import AnswerConfidence


class Verdict(BaseModel):
    escalate: bool
    signal: Signal | Literal["verifier"]
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


def verify(config: CascadeConfig, verifier: VerifierModel, answer: VerifierInput) -> Verdict:
    """The learned verifier's probability against `verifier_bar`."""
    p = verifier.probability(answer)
    escalate = p >= config.verifier_bar if verifier.label == "upper_better" else p < config.verifier_bar
    # describe() shows `<` for an escalation: for `upper_better` that reads "p<bar" wrongly, so
    # the value shown is the chance the cheap answer stands (1 - p), escalating below 1 - bar.
    if verifier.label == "upper_better":
        return Verdict(escalate=escalate, signal="verifier", value=1.0 - p, threshold=1.0 - config.verifier_bar)
    return Verdict(escalate=escalate, signal="verifier", value=p, threshold=config.verifier_bar)
