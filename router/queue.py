"""Queue-aware shift of the threshold: when the large tier is backed up, borderline
queries go small; queries above the "must go large" score still go large. The small
tier's own queue bounds the shift: moving a query only helps while the small tier's
expected wait is the shorter one (otherwise the queue just changes tiers).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from router.decision import TierLoad


class QueueConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    latency_budget_s: float = Field(4.0, gt=0, description="Acceptable expected wait at the large tier")
    seconds_per_queued_request: float = Field(
        1.0, gt=0, description="Expected wait one request ahead adds (per large replica)"
    )
    must_large_score: float = Field(
        0.5, ge=0.0, le=1.0, description="Scores at or above this go large whatever the queue"
    )
    small_seconds_per_queued_request: float = Field(
        0.25, ge=0, description="Expected wait one request ahead adds at the small tier "
        "(0 = ignore the small tier's queue)"
    )


class QueueShift(BaseModel):
    threshold: float
    expected_wait_s: float
    shifted: bool


def expected_wait_s(load: TierLoad | None, seconds_per_request: float) -> float:
    """Requests ahead (waiting + running, summed over the tier's replicas) times their cost."""
    return load.depth * seconds_per_request if load is not None else 0.0


def shift_threshold(
    threshold: float, load: TierLoad | None, config: QueueConfig, small: TierLoad | None = None
) -> QueueShift:
    """Raise the cut towards `must_large_score` as the expected wait passes the budget.

    The budget is the larger of `latency_budget_s` and the small tier's expected wait:
    at the budget nothing moves; at twice the budget only must-go-large queries go large.
    The threshold never drops: a busy large tier never attracts more traffic.
    """
    if not config.enabled or load is None:
        return QueueShift(threshold=threshold, expected_wait_s=0.0, shifted=False)
    wait = expected_wait_s(load, config.seconds_per_queued_request)
    small_wait = expected_wait_s(small, config.small_seconds_per_queued_request)
    overload = wait / max(config.latency_budget_s, small_wait) - 1.0
    ceiling = max(threshold, config.must_large_score)
    if overload <= 0:
        return QueueShift(threshold=threshold, expected_wait_s=wait, shifted=False)
    shifted = threshold + (ceiling - threshold) * min(1.0, overload)
    return QueueShift(threshold=shifted, expected_wait_s=wait, shifted=shifted > threshold)
