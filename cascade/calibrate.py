"""Thresholds from graded outcomes: the confidence below which a target share of the
cheap tier's answers escalates, and what quality that buys."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from pydantic import BaseModel

from engines.confidence import COLUMN_PREFIXES


class CalibrationPoint(BaseModel):
    escalation_rate: float  # share of requests that escalate at `threshold`
    threshold: float
    quality: float  # mean score of the answers served: the cheap one kept, the next tier's otherwise
    kept_quality: float | None  # mean score of the cheap answers kept (None: none kept)


def threshold_for_rate(confidence: Sequence[float], rate: float) -> float:
    """The confidence at which `rate` of the answers fall below it (and escalate)."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError("the escalation rate is a share in [0, 1]")
    values = np.sort(np.asarray(confidence, dtype=float))
    if len(values) == 0:
        raise ValueError("no graded answers to calibrate on")
    k = int(round(rate * len(values)))
    if k == 0:
        return float(values[0])  # nothing below the least sure: none escalates
    if k >= len(values):
        return float(np.nextafter(values[-1], np.inf))  # all below
    return float(values[k])


def calibrate(
    confidence: Sequence[float], cheap_score: Sequence[float], next_score: Sequence[float], rate: float
) -> CalibrationPoint:
    """The threshold for `rate` and the quality of serving by it on these graded rows."""
    conf = np.asarray(confidence, dtype=float)
    cheap, upper = np.asarray(cheap_score, dtype=float), np.asarray(next_score, dtype=float)
    threshold = threshold_for_rate(conf, rate)
    escalate = conf < threshold
    served = np.where(escalate, upper, cheap)
    kept = cheap[~escalate]
    return CalibrationPoint(
        escalation_rate=float(escalate.mean()), threshold=threshold, quality=float(served.mean()),
        kept_quality=float(kept.mean()) if len(kept) else None,
    )


def graded_columns(columns: Sequence[str], signal: str, target: str, upper: str) -> tuple[str, str, str]:
    """The (confidence, cheap score, upper score) columns of a graded answers table
    (`router collect --logprobs` + `router grade`): e.g. lp_mean:small:auto, score:small:auto,
    score:large. Raises ValueError naming a missing one."""
    wanted = (f"{COLUMN_PREFIXES[signal]}:{target}", f"score:{target}", f"score:{upper}")
    missing = [column for column in wanted if column not in columns]
    if missing:
        raise ValueError(f"missing column(s) {', '.join(missing)}")
    return wanted


def calibration_table(
    confidence: Sequence[float], cheap_score: Sequence[float], next_score: Sequence[float], rates: Sequence[float]
) -> list[CalibrationPoint]:
    """One point per escalation rate, on the rows graded for both tiers (others left out)."""
    conf = np.asarray(confidence, dtype=float)
    cheap, upper = np.asarray(cheap_score, dtype=float), np.asarray(next_score, dtype=float)
    keep = ~(np.isnan(conf) | np.isnan(cheap) | np.isnan(upper))
    return [calibrate(conf[keep], cheap[keep], upper[keep], rate) for rate in rates]
