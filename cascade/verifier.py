"""A learned verifier for cascades: from the cheap answer's logprob signals, its length, the
router's score and the category, the chance that escalating helps (the upper tier's answer
graded better, by default) or that the cheap answer is acceptable.

Trained by the own-pair loop on graded answers (`router collect --logprobs 2`, `router grade`,
`gateway cascade-train-verifier`), stored as JSON (never a pickle: the file is a path ops
hand over), scored in microseconds with numpy. The form is the L2 logistic regression of
load_tests/cascade_eval.py's `logistic` verifier: missing values filled with the training
median, the numbers standardised, the category one-hot (an unseen one sets no level).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Sequence

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

Floats = NDArray[np.float64]
FEATURES = ("mean_logprob", "min_logprob", "mean_margin", "tokens", "answer_chars", "router_score")
Label = Literal["upper_better", "acceptable"]
MAX_FILE_BYTES = 1_000_000
NO_CATEGORY = "(none)"


class VerifierInput(BaseModel):
    """What the gateway knows of one cheap answer when it judges it (None: unknown)."""

    mean_logprob: float | None = None
    min_logprob: float | None = None
    mean_margin: float | None = None
    tokens: float | None = None
    answer_chars: float | None = None
    router_score: float | None = None
    category: str | None = None

    def vector(self) -> Floats:
        return np.array([np.nan if (v := getattr(self, name)) is None else v for name in FEATURES], dtype=np.float64)


class VerifierModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["logistic"] = "logistic"
    label: Label = Field(description="What the probability is of: the upper answer better, or the cheap one acceptable")
    features: tuple[str, ...] = FEATURES
    fill: list[float] = Field(description="Training medians, for a missing value")
    mean: list[float]
    scale: list[float]
    categories: list[str] = Field(description="One-hot levels, in coefficient order after the numbers")
    coef: list[float]
    intercept: float
    trained_on: dict[str, str | int | float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _shapes(self) -> "VerifierModel":
        n = len(self.features)
        if self.features != FEATURES:
            raise ValueError(f"features {list(self.features)} are not this gateway's {list(FEATURES)}")
        if not (len(self.fill) == len(self.mean) == len(self.scale) == n) or len(self.coef) != n + len(self.categories):
            raise ValueError("the verifier's vectors do not match its features and categories")
        return self

    def probability(self, row: VerifierInput) -> float:
        """P(label) for one answer."""
        return float(self.probabilities(row.vector()[None, :], [row.category])[0])

    def probabilities(self, numbers: Floats, categories: Sequence[str | None]) -> Floats:
        filled = np.where(np.isnan(numbers), np.asarray(self.fill), numbers)
        z = (filled - np.asarray(self.mean)) / np.asarray(self.scale)
        onehot = np.array([[c == level for level in self.categories] for c in _levels(categories)], dtype=np.float64)
        logit = np.hstack([z, onehot.reshape(len(z), -1)]) @ np.asarray(self.coef) + self.intercept
        return 1.0 / (1.0 + np.exp(-logit))


def fit_verifier(
    numbers: Floats, categories: Sequence[str | None], label: Floats, kind: Label = "upper_better", c: float = 1.0,
) -> VerifierModel:
    """Fit on rows of FEATURES (NaN: unknown) with their categories; `label` 1 or 0."""
    from sklearn.linear_model import LogisticRegression

    y = (np.asarray(label) >= 0.5).astype(np.int64)
    if len(np.unique(y)) < 2:
        raise ValueError("the verifier needs both outcomes among its training rows")
    fill = np.nanmedian(np.where(np.all(np.isnan(numbers), axis=0), 0.0, numbers), axis=0)
    filled = np.where(np.isnan(numbers), fill, numbers)
    mean, scale = filled.mean(axis=0), filled.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    levels = sorted(set(_levels(categories)))
    onehot = np.array([[c == level for level in levels] for c in _levels(categories)], dtype=np.float64)
    model = LogisticRegression(C=c, max_iter=1000).fit(np.hstack([(filled - mean) / scale, onehot]), y)
    return VerifierModel(
        label=kind, fill=fill.tolist(), mean=mean.tolist(), scale=scale.tolist(), categories=levels,
        coef=model.coef_[0].tolist(), intercept=float(model.intercept_[0]),
    )


def load_verifier(path: Path) -> VerifierModel:
    """Raises ValueError for a file too large or not a verifier of these features."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"{path}: larger than {MAX_FILE_BYTES} bytes, not a verifier")
    return VerifierModel.model_validate_json(path.read_bytes())


def save_verifier(model: VerifierModel, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(model.model_dump_json(indent=1) + "\n")


def _levels(categories: Sequence[str | None]) -> list[str]:
    return [c if c else NO_CATEGORY for c in categories]
