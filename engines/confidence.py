"""How sure a model was of its own answer, read from its token logprobs.

A cascade reads this from the cheap tier's answer to decide whether to return it or ask
the next tier (cascade routing, Dekoninck et al. 2025; vLLM Semantic Router's confidence
escalation); `router collect --logprobs` records the same figures for every collected
answer, so the thresholds are calibrated on exactly what the gateway computes live.
"""

from __future__ import annotations

from typing import Sequence

from pydantic import BaseModel, Field

from engines.types import TokenLogprob


# AnswerConfidence field -> column prefix in answers tables (`router collect --logprobs`
# writes `lp_mean:<target>`..., `gateway cascade-calibrate` reads them).
COLUMN_PREFIXES = {"mean_logprob": "lp_mean", "min_logprob": "lp_min", "mean_margin": "lp_margin"}


class AnswerConfidence(BaseModel):
    """Per-answer summary of its sampled tokens' log-probabilities (natural log)."""

    tokens: int = Field(ge=0, description="Tokens the figures are over")
    mean_logprob: float = Field(description="Mean logprob of the sampled tokens (0: certain)")
    min_logprob: float = Field(description="The least likely sampled token's logprob")
    mean_margin: float | None = Field(
        None, description="Mean gap between the two likeliest tokens at each step; None: no alternatives asked"
    )


def answer_confidence(logprobs: Sequence[TokenLogprob] | None) -> AnswerConfidence | None:
    """None when the answer has no token logprobs (the engine gave none, or no tokens)."""
    if not logprobs:
        return None
    values = [token.logprob for token in logprobs]
    margins = [_margin(token) for token in logprobs]
    known = [m for m in margins if m is not None]
    return AnswerConfidence(
        tokens=len(values), mean_logprob=sum(values) / len(values), min_logprob=min(values),
        mean_margin=sum(known) / len(known) if known else None,
    )


def _margin(token: TokenLogprob) -> float | None:
    # The alternatives, the sampled token among them (OpenAI lists it in `top_logprobs`).
    ranked = sorted((alt.logprob for alt in token.top), reverse=True)
    if len(ranked) < 2:
        return None
    return ranked[0] - ranked[1]
