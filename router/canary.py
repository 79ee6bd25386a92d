"""The router canary's verdict: a candidate version against the active one, on live traffic.

Both versions score the same live `auto` requests (the candidate in shadow: scores only,
no generation). What they are compared on:
- decision agreement and the large share each would send at the configured threshold
  (a candidate whose share drifts far from the target would change cost and latency);
- where graded outcomes exist for those requests, the quality each would reach: the
  graded score of the tier each would pick.
Pure: the monitor at the edge gathers the figures (graded outcomes are read by
`router.data.load_graded`) and acts on the verdict.
"""

from __future__ import annotations

import hashlib
from typing import Literal, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

Decision = Literal["wait", "promote", "reject"]
TIE = 1e-9  # qualities are means over the same graded requests: equal ones are equal


class RouterCanaryConfig(BaseModel):
    """Guardrails of the router canary (ingress `user_config.routing.canary`, live)."""

    model_config = ConfigDict(extra="forbid")

    min_samples: int = Field(50, ge=1, description="Requests both versions scored before any decision")
    min_graded: int = Field(30, ge=0, description="Of them, with graded outcomes before any decision")
    min_quality_gain: float = Field(
        0.0, ge=-1.0, le=1.0, description="Candidate quality minus active quality needed to promote"
    )
    max_share_drift: float = Field(
        0.15, ge=0.0, le=1.0, description="Largest |candidate large share - target share| allowed"
    )
    min_agreement: float = Field(0.0, ge=0.0, le=1.0, description="Least decision agreement allowed")
    auto_promote: bool = Field(True, description="Activate a candidate that clears every guardrail")
    auto_reject: bool = Field(True, description="Clear a candidate that fails one")
    outcomes_file: str | None = Field(
        None, description="Graded outcomes (`router grade --out`) looked up by prompt for canary quality"
    )
    shadow_threshold: float | None = Field(
        0.8, ge=0.0, le=1.0, description="A canary request the shadow mirrored (large answered, small "
        "shadowed) is graded too: small passes when the two answers agree at least this much, large "
        "passes (the flywheel's rule); None: only the outcomes file grades"
    )


class CanaryFigures(BaseModel):
    samples: int
    agreement: float | None = None
    active_large_share: float | None = None
    candidate_large_share: float | None = None
    graded: int = 0
    active_quality: float | None = None
    candidate_quality: float | None = None
    oracle_quality: float | None = None


class CanaryVerdict(BaseModel):
    decision: Decision
    reason: str
    figures: CanaryFigures


def judge(figures: CanaryFigures, config: RouterCanaryConfig, target_share: float) -> CanaryVerdict:
    def verdict(decision: Decision, reason: str) -> CanaryVerdict:
        return CanaryVerdict(decision=decision, reason=reason, figures=figures)

    if figures.samples < config.min_samples or figures.graded < config.min_graded:
        return verdict("wait", f"samples {figures.samples}/{config.min_samples}, "
                               f"graded {figures.graded}/{config.min_graded}")
    share = figures.candidate_large_share or 0.0
    if abs(share - target_share) > config.max_share_drift:
        return verdict("reject", f"large share {share:.2f} vs target {target_share:.2f}: "
                                 f"drift above {config.max_share_drift:.2f}")
    if (figures.agreement or 0.0) < config.min_agreement:
        return verdict("reject", f"agreement {figures.agreement:.2f} < {config.min_agreement:.2f}")
    if figures.candidate_quality is not None and figures.active_quality is not None:
        gain = figures.candidate_quality - figures.active_quality
        quality = f"quality {figures.candidate_quality:.3f} vs active {figures.active_quality:.3f} (gain {gain:+.3f}"
        if gain < config.min_quality_gain - TIE:
            return verdict("reject", f"{quality} < {config.min_quality_gain:+.3f})")
        # Exactly at the bar, quality says nothing either way: the candidate must not cost
        # more (send more to large) than the active version, or it would be paid-for noise.
        # A shuffled model that sends most traffic large can tie a good one when large
        # passes nearly everything graded (seen in the canary API test).
        active_share = figures.active_large_share
        if gain <= config.min_quality_gain + TIE and active_share is not None and share > active_share + TIE:
            return verdict("reject", f"{quality}, no better) at a larger large share {share:.2f} "
                                     f"than the active's {active_share:.2f}")
        return verdict("promote", f"{quality}), large share {share:.2f}")
    return verdict("promote", f"agreement {figures.agreement or 0:.2f}, large share {share:.2f} (no graded outcomes)")


def prompt_key(text: str) -> str:
    """What joins a live request to a graded outcome: the routed text's digest."""
    return hashlib.sha256(text.strip().encode()).hexdigest()[:24]


Graded = Mapping[str, tuple[float, float]]  # prompt key -> (lower tier's score, upper tier's score)


def compare(
    rows: Sequence[tuple[str, str, str]], graded: Graded, pair: tuple[str, str] = ("small", "large"),
) -> CanaryFigures:
    """Figures over (active tier, candidate tier, prompt key) rows of one version pair. `pair`:
    the lower and upper tier the graded scores are of; the "large" share is the upper tier's
    (a step canary's: the tier its router climbs to)."""
    n = len(rows)
    if n == 0:
        return CanaryFigures(samples=0)
    lower, upper = pair
    figures = CanaryFigures(
        samples=n,
        agreement=sum(a == c for a, c, _ in rows) / n,
        active_large_share=sum(a == upper for a, _, _ in rows) / n,
        candidate_large_share=sum(c == upper for _, c, _ in rows) / n,
    )
    known = [(a, c, graded[k]) for a, c, k in rows if k in graded]
    if not known:
        return figures
    pick = {lower: 0, upper: 1}
    return figures.model_copy(update={
        "graded": len(known),
        "active_quality": sum(g[pick[a]] for a, _, g in known) / len(known),
        "candidate_quality": sum(g[pick[c]] for _, c, g in known) / len(known),
        "oracle_quality": sum(max(g) for _, _, g in known) / len(known),
    })
