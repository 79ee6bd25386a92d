"""The scorer a routing decision runs: one LightGBM head distilled from the router's ensemble.

The ensemble (kNN history, stacked models, five heads, a rank average) ranks best, but it is
many small reads: in a busy replica a decision took 1.2-1.5 ms of CPU and added ~3 ms to an
`auto` request, because its reads (a 2.7 MB index, five forests, rank tables) evict what the
request does next (load_tests/bench_auto_cost.py; replacing it by a constant left +0.3 ms).
The student regresses the ensemble's cross-fitted value from what is cheap to read at serving
time (the embedding, the text and ask features, the stacked models' outputs). On the MMLU
split it routes as the ensemble does: APGR 0.702 / 0.685 at seeds 0 / 1 against 0.696 / 0.692
(docs/router_experiments.md).

Its calibration maps its out-of-fold prediction to the ensemble's calibrated probability of
the same row, not to the row's outcome: the ensemble's value of a neighbouring row holds this
row's outcome (its kNN features count it), so a student's out-of-fold prediction still leans
on the outcome it is judged by (out-of-fold APGR 0.74 against the ensemble's honest 0.70).
For the same reason its own out-of-fold figures cannot choose it: it serves where the pair's
own rows are at least `STUDENT_MIN_ROWS` (the scale it was measured at), and the ensemble
serves below that; the manifest records the choice and how closely the student follows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel

from router.calibration import IsotonicCurve
from router.single_row import SingleRowPredictor

STUDENT_FILE = "student.txt"
STUDENT_CALIBRATION_FILE = "student_calibration.npz"
# The fewest own rows the student serves from: it was measured on the MMLU split's 7k
# (docs/router_experiments.md); a pair's first few hundred outcomes keep the ensemble.
STUDENT_MIN_ROWS = 2000
# 100 trees of 15 leaves at 0.15: each tree is cache misses in a cold replica (a decision's CPU
# 0.57-0.76 ms against 0.68-0.89 with 300 trees of 31 leaves), for the same routing on the
# MMLU split (APGR 0.702 / 0.685 at seeds 0 / 1 against 0.700 / 0.685; 50 trees: 0.699 / 0.684).
STUDENT_PARAMS: dict[str, Any] = dict(
    n_estimators=100, learning_rate=0.15, num_leaves=15, objective="regression",
    colsample_bytree=0.5, subsample=0.8, subsample_freq=1, max_bin=63, reg_lambda=1.0,
    verbose=-1, random_state=0,
)


class ScorerChoice(BaseModel):
    """Which scorer serves a trained model, and how closely the student follows the ensemble."""

    served: Literal["student", "ensemble"]
    own_rows: int
    min_rows: int
    # Correlation of the student's out-of-fold prediction with the ensemble's value, own rows.
    fidelity: float


def fidelity(student: NDArray[np.float64], ensemble: NDArray[np.float64]) -> float:
    """Their correlation; 0 where either is constant (a few identical outcomes), where it is undefined."""
    if len(student) < 2 or np.ptp(student) == 0 or np.ptp(ensemble) == 0:
        return 0.0
    return float(np.corrcoef(student, ensemble)[0, 1])


def choose(own_rows: int, fidelity: float, min_rows: int | None = None) -> ScorerChoice:
    least = STUDENT_MIN_ROWS if min_rows is None else min_rows
    return ScorerChoice(served="student" if own_rows >= least else "ensemble", own_rows=own_rows,
                        min_rows=least, fidelity=fidelity)


@dataclass
class Student:
    booster: Any  # lightgbm.Booster: features -> the ensemble's rank value
    calibrator: IsotonicCurve  # its prediction -> P(large helps)
    _fast: SingleRowPredictor | None = field(default=None, repr=False, compare=False)

    def score(self, x: NDArray[np.float32]) -> NDArray[np.float64]:
        raw = self._raw(x)
        # As the ensemble's calibration: the tiny raw term breaks isotonic ties.
        return np.clip(self.calibrator.predict(raw), 0.0, 1.0) + 1e-6 * raw

    def _raw(self, x: NDArray[np.float32]) -> NDArray[np.float64]:
        if len(x) != 1:
            return np.asarray(self.booster.predict(x, num_threads=1), dtype=np.float64)
        if self._fast is None:
            self._fast = SingleRowPredictor(self.booster)
        return np.array([self._fast.predict(x[0])])

    def save(self, out: Path) -> None:
        self.booster.save_model(str(out / STUDENT_FILE))
        self.calibrator.save(out / STUDENT_CALIBRATION_FILE)

    @classmethod
    def load(cls, path: Path) -> Student:
        import lightgbm as lgb

        return cls(booster=lgb.Booster(model_file=str(path / STUDENT_FILE)),
                   calibrator=IsotonicCurve.load(path / STUDENT_CALIBRATION_FILE))


def fit_student(
    x: NDArray[np.float32], target: NDArray[np.float64], calibrated: NDArray[np.float64],
    weights: NDArray[np.float32], threads: int, leaf: int,
) -> tuple[Student, NDArray[np.float64], NDArray[np.float64]]:
    """The student on every row, fitted to `target` (the ensemble's value) and calibrated to
    `calibrated` (the ensemble's probability); its out-of-fold raw predictions and scores
    (from students that never saw the row)."""
    import lightgbm as lgb
    from sklearn.isotonic import IsotonicRegression
    from sklearn.model_selection import KFold

    params = {**STUDENT_PARAMS, "min_child_samples": leaf}

    def fitted(rows: NDArray[np.int64]) -> Any:
        return lgb.LGBMRegressor(**params, n_jobs=threads).fit(
            x[rows], target[rows], sample_weight=weights[rows]).booster_

    raw = np.zeros(len(x))
    for fit_idx, held_idx in KFold(4, shuffle=True, random_state=2).split(x):
        raw[held_idx] = fitted(fit_idx).predict(x[held_idx], num_threads=threads)
    isotonic = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, calibrated, sample_weight=weights)
    student = Student(booster=fitted(np.arange(len(x))), calibrator=IsotonicCurve.from_sklearn(isotonic))
    return student, raw, np.clip(student.calibrator.predict(raw), 0.0, 1.0) + 1e-6 * raw
