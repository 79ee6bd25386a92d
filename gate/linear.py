"""The fitted gate classifier as plain arrays: standardise, a linear layer, one isotonic
calibration curve per class, normalise.

The same arithmetic as scikit-learn's `CalibratedClassifierCV(Pipeline(StandardScaler,
LogisticRegression), method="isotonic", ensemble=False).predict_proba`, for two reasons:
one message costs ~0.05 ms instead of ~1 ms of scikit-learn's input checks (the gate
decides before every routed request), and the artifact is arrays in an .npz rather than a
pickle, so it loads with any scikit-learn version, or none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


@dataclass(frozen=True)
class CalibratedLinear:
    mean: Array  # (features,)
    scale: Array  # (features,)
    coef: Array  # (classes, features)
    intercept: Array  # (classes,)
    curves_x: tuple[Array, ...]  # per class: the isotonic curve's thresholds
    curves_y: tuple[Array, ...]

    @classmethod
    def from_sklearn(cls, calibrated: Any) -> CalibratedLinear:
        """From a fitted CalibratedClassifierCV (ensemble=False, isotonic) over
        Pipeline(StandardScaler, LogisticRegression), multiclass."""
        (single,) = calibrated.calibrated_classifiers_
        scaler, logistic = single.estimator[0], single.estimator[-1]
        if list(logistic.classes_) != list(range(len(logistic.classes_))) or len(logistic.classes_) < 3:
            raise ValueError("expected a multiclass model over classes 0..k-1")
        return cls(
            mean=np.asarray(scaler.mean_, dtype=np.float64), scale=np.asarray(scaler.scale_, dtype=np.float64),
            coef=np.asarray(logistic.coef_, dtype=np.float64),
            intercept=np.asarray(logistic.intercept_, dtype=np.float64),
            curves_x=tuple(np.asarray(c.X_thresholds_, dtype=np.float64) for c in single.calibrators),
            curves_y=tuple(np.asarray(c.y_thresholds_, dtype=np.float64) for c in single.calibrators),
        )

    @property
    def n_features(self) -> int:
        return int(self.coef.shape[1])

    def predict_proba(self, x: Array) -> Array:
        scores = ((x - self.mean) / self.scale) @ self.coef.T + self.intercept
        proba = np.empty_like(scores)
        for k, (xs, ys) in enumerate(zip(self.curves_x, self.curves_y)):
            proba[:, k] = np.interp(scores[:, k], xs, ys)  # np.interp clips at the ends, as "clip" does
        total = proba.sum(axis=1, keepdims=True)
        # Every curve at zero: no evidence for any class, so uniform (as scikit-learn does).
        uniform = np.full_like(proba, 1.0 / proba.shape[1])
        return np.divide(proba, total, out=uniform, where=total != 0)

    def save(self, path: Path) -> None:
        curves = {f"curve_x{k}": x for k, x in enumerate(self.curves_x)}
        curves |= {f"curve_y{k}": y for k, y in enumerate(self.curves_y)}
        with path.open("wb") as f:  # a file object: np.savez would append ".npz" to the name
            np.savez(f, mean=self.mean, scale=self.scale, coef=self.coef, intercept=self.intercept, **curves)

    @classmethod
    def load(cls, path: Path) -> CalibratedLinear:
        with np.load(path, allow_pickle=False) as arrays:
            k = int(arrays["coef"].shape[0])
            return cls(
                mean=arrays["mean"], scale=arrays["scale"], coef=arrays["coef"], intercept=arrays["intercept"],
                curves_x=tuple(arrays[f"curve_x{i}"] for i in range(k)),
                curves_y=tuple(arrays[f"curve_y{i}"] for i in range(k)),
            )
