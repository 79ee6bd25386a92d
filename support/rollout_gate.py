"""The rollout's two judgements over a category's feedback (design note 002): pure.

- promotion (draft -> auto): enough rated drafts, drafts mostly sent unchanged (the
  draft-vs-sent match rate), few negative ratings;
- the guardrail (auto -> draft): the negative share of customer-facing answers at or
  above the category's limit, once enough of them are rated.
Each result says why, with the figures, so the event that records a change explains it.
"""

from __future__ import annotations

from pydantic import BaseModel

from support.config import PromotionGate
from support.ratings import Ratings


class GateResult(BaseModel):
    """The promotion gate's verdict: `cleared` when every condition is met."""

    cleared: bool
    why: str


class GuardrailResult(BaseModel):
    """The guardrail's verdict: `breached` when the demotion's condition holds."""

    breached: bool
    why: str


def promotion_gate(drafts: Ratings, gate: PromotionGate) -> GateResult:
    """Whether a draft category has earned `auto`; `why` names every unmet condition."""
    unmet = []
    if drafts.n < gate.min_samples:
        unmet.append(f"{drafts.n} rated drafts < {gate.min_samples}")
    match = drafts.match_rate
    if match is None:
        unmet.append("no draft rated with the text sent")
    elif match < gate.min_match:
        unmet.append(f"match rate {match:.2f} < {gate.min_match:.2f}")
    negative = drafts.negative_share
    if negative is not None and negative >= gate.max_negative:
        unmet.append(f"negative share {negative:.2f} >= {gate.max_negative:.2f}")
    if unmet:
        return GateResult(cleared=False, why="; ".join(unmet))
    return GateResult(cleared=True, why=(
        f"{drafts.n} rated drafts >= {gate.min_samples}, match rate {match:.2f} >= {gate.min_match:.2f}, "
        f"negative share {negative or 0.0:.2f} < {gate.max_negative:.2f}"
    ))


def guardrail_breached(answers: Ratings, limit: float, min_samples: int) -> GuardrailResult:
    """Whether customer-facing answers are rated badly enough to go back to drafts."""
    share = answers.negative_share
    if answers.n < min_samples or share is None:
        return GuardrailResult(breached=False, why=f"{answers.n} rated answers < {min_samples}")
    if share >= limit:
        return GuardrailResult(breached=True, why=f"negative share {share:.2f} >= guardrail {limit:.2f} "
                                                 f"over {answers.n} rated answers")
    return GuardrailResult(breached=False, why=f"negative share {share:.2f} < guardrail {limit:.2f}")
