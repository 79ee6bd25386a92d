"""Training rows for a cascade verifier from a graded answers table (`router collect
--logprobs 2` + `router grade`): the cheap tier's signals per answer, and its label."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cascade.verifier import FEATURES, Label
from text.category import normalise_category

Floats = NDArray[np.float64]
# FEATURES -> the table's column prefix (the router score is not in the table: passed in).
COLUMNS = {"mean_logprob": "lp_mean", "min_logprob": "lp_min", "mean_margin": "lp_margin",
           "tokens": "tokens", "answer_chars": "answer_chars"}


class TrainingRows:
    def __init__(self, frame: pd.DataFrame, target: str, upper: str) -> None:
        """Rows where both tiers were graded; raises ValueError naming missing columns."""
        wanted = [f"{prefix}:{target}" for prefix in COLUMNS.values()] + [f"score:{target}", f"score:{upper}", "prompt"]
        missing = [c for c in wanted if c not in frame.columns]
        if missing:
            raise ValueError(f"missing column(s) {', '.join(missing)}")
        graded = frame[frame[f"score:{target}"].notna() & frame[f"score:{upper}"].notna()].reset_index(drop=True)
        self.prompts: list[str] = graded["prompt"].astype(str).tolist()
        self.categories: list[str | None] = (
            [normalise_category(c) if isinstance(c, str) else None for c in graded["category"]]
            if "category" in graded.columns else [None] * len(graded)
        )
        self.signals = graded[[f"{p}:{target}" for p in COLUMNS.values()]].apply(pd.to_numeric, errors="coerce")
        self.cheap = graded[f"score:{target}"].to_numpy(dtype=np.float64)
        self.upper = graded[f"score:{upper}"].to_numpy(dtype=np.float64)

    def __len__(self) -> int:
        return len(self.prompts)

    def numbers(self, router_scores: Sequence[float] | None) -> Floats:
        """Rows of FEATURES; NaN router scores when none are given."""
        scores = np.full(len(self), np.nan) if router_scores is None else np.asarray(router_scores, dtype=np.float64)
        numbers = np.column_stack([self.signals.to_numpy(dtype=np.float64), scores])
        assert numbers.shape[1] == len(FEATURES)
        return numbers

    def labels(self, label: Label) -> Floats:
        if label == "upper_better":
            return (self.upper > self.cheap).astype(np.float64)
        return (self.cheap >= 0.5).astype(np.float64)
