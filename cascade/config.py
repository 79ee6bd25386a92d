"""Which requests run as a cascade and when the cheap answer is good enough (live config,
ingress `user_config.cascade`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Figures of engines.confidence.AnswerConfidence a verdict can read; higher = surer.
Signal = Literal["mean_logprob", "min_logprob", "mean_margin"]
ALL = "*"


class CascadeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    categories: list[str] = Field(
        default_factory=list,
        description="Categories whose `auto` traffic runs as a cascade ('*': all); a request may also "
        "ask with `cascade: true`, or opt out with `cascade: false`",
    )
    signal: Signal = Field("mean_logprob", description="The cheap answer's confidence figure compared")
    # Calibrated on the embedded tiers' graded answers (`gateway cascade-calibrate --data
    # data/routing_eval/cascade_outcomes.csv --rate 0.3`): 30 % of the small tier's answers
    # escalate at this mean logprob. Recalibrate for another pair or another rate.
    threshold: float = Field(-0.66, description="The cheap answer is kept when its signal is at least this")
    per_tier: dict[str, float] = Field(
        default_factory=dict, max_length=16,
        description="A tier's own bar, replacing `threshold` for its answers (each tier's logprobs sit "
        "differently: `gateway cascade-calibrate --target large --upper frontier` prints one)",
    )
    verifiers: dict[str, Path] = Field(
        default_factory=dict, max_length=16,
        description="A tier's learned verifier (`gateway cascade-train-verifier`, JSON): judges that tier's "
        "answers instead of `signal`; a file that fails to load falls back to `signal`, logged",
    )
    verifier_bar: float = Field(
        0.5, ge=0.0, le=1.0, description="A verifier of `upper_better` escalates at or above this probability; "
        "one of `acceptable` escalates below it",
    )
    top_logprobs: int = Field(
        2, ge=2, le=20, description="Alternatives asked per token of the cheap answer (the margin needs two)"
    )

    def applies_to(self, category: str | None) -> bool:
        return ALL in self.categories or (category is not None and category in self.categories)
