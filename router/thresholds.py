"""Where the score is cut: a fixed probability, or a target large share met on live traffic."""

from __future__ import annotations

import threading
from collections import deque
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from engines.types import Tier
from text.category import normalise_category


class ThresholdConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["probability", "share"] = Field(
        "share", description="Cut at a probability, or at a target share of large traffic"
    )
    probability: float = Field(
        0.3, ge=0.0, le=1.0, description="Cut on P(small not acceptable and large is)"
    )
    large_share: float = Field(0.3, ge=0.0, le=1.0, description="Target share of auto traffic to large")
    window: int = Field(2000, ge=10, description="Recent scores the share threshold is taken from")
    min_samples: int = Field(
        50, ge=1, description="Below this many live scores, use the training-set quantile"
    )
    category_overrides: dict[str, Tier] = Field(
        default_factory=dict, description="Category → tier, always (e.g. billing: large)"
    )

    @field_validator("category_overrides")
    @classmethod
    def _normalised(cls, value: dict[str, Tier]) -> dict[str, Tier]:
        # Requests carry normalised categories: a key spelt `Billing` must match them.
        return {normalise_category(k) or k: tier for k, tier in value.items()}


class ShareThreshold:
    """Keeps a rolling window of live scores; the cut is their (1 - share) quantile.

    A share target met on training data drifts on real traffic (other prompts, other
    length mix); recalibrating from what the router actually sees keeps it honest.
    Decisions read the cut on worker threads while the event loop records scores: both
    go through one lock (a deque read while it is appended to raises).
    """

    def __init__(self, window: int, training_scores: list[float] | None = None, refresh: int = 16) -> None:
        self.window = window
        self._scores: deque[float] = deque(maxlen=window)
        self._training = np.asarray(training_scores or [], dtype=np.float64)
        # A quantile over the whole window costs ~0.4 ms; a window of thousands moves
        # negligibly in `refresh` scores, so the cut is recomputed that often, not per query.
        self._refresh = refresh
        self._since = 0
        # Per (share, min_samples): one cut per tier above small when ops add tiers.
        self._cached: dict[tuple[float, int], float] = {}
        self._lock = threading.Lock()

    def observe(self, score: float) -> None:
        with self._lock:
            self._scores.append(score)
            self._since += 1

    def threshold(self, share: float, min_samples: int) -> float:
        key = (share, min_samples)
        with self._lock:
            if self._since >= self._refresh:
                self._cached, self._since = {}, 0
            value = self._cached.get(key)
            if value is None:
                value = self._cached[key] = self._compute(share, min_samples)
                if len(self._cached) > 16:  # shares are a few config values; bound it anyway
                    self._cached = {key: value}
            return value

    def _compute(self, share: float, min_samples: int) -> float:
        source = np.fromiter(self._scores, dtype=np.float64) if len(self._scores) >= min_samples else self._training
        if len(source) == 0:
            return 0.5
        if share <= 0.0:
            return float("inf")
        return float(np.quantile(source, 1.0 - share))

    def __len__(self) -> int:
        return len(self._scores)


def base_threshold(config: ThresholdConfig, share: ShareThreshold) -> float:
    if config.mode == "probability":
        return config.probability
    return share.threshold(config.large_share, config.min_samples)
