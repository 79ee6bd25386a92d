"""Routing outcome data: prompts with the small and large models' correctness.

Accepts a CSV or JSONL file, or a directory of CSVs (RouteLLM's per-subject layout, the
file stem becoming the category). Correctness columns may be booleans, 0/1 or scores in
[0, 1] (a score of at least `acceptable` counts as acceptable).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray


class DataError(ValueError):
    pass


@dataclass(frozen=True)
class OutcomeData:
    prompts: list[str]
    small_ok: NDArray[np.float32]
    large_ok: NDArray[np.float32]
    categories: list[str | None]

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, idx: NDArray[np.int64]) -> "OutcomeData":
        return OutcomeData(
            prompts=[self.prompts[i] for i in idx],
            small_ok=self.small_ok[idx],
            large_ok=self.large_ok[idx],
            categories=[self.categories[i] for i in idx],
        )


def _read_table(path: Path) -> pd.DataFrame:
    if path.is_dir():
        frames = []
        for file in sorted(path.glob("*.csv")):
            frame = pd.read_csv(file)
            frame["category"] = file.stem.removeprefix("mmlu_")
            frames.append(frame)
        if not frames:
            raise DataError(f"{path} holds no CSV files")
        return pd.concat(frames, ignore_index=True)
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    raise DataError(f"{path}: expected a .csv or .jsonl file, or a directory of CSVs")


def _correctness(column: pd.Series, name: str, acceptable: float) -> NDArray[np.float32]:
    if column.dtype == object:
        lowered = column.astype(str).str.strip().str.lower()
        mapped = lowered.map({"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0})
        if mapped.isna().any():
            bad = column[mapped.isna()].iloc[0]
            raise DataError(f"column '{name}' has a value that is not a boolean or score: {bad!r}")
        values = mapped.to_numpy(dtype=np.float64)
    else:
        values = column.astype(float).to_numpy()
    if np.isnan(values).any() or values.min() < 0 or values.max() > 1:
        raise DataError(f"column '{name}' must hold booleans, 0/1 or scores in [0, 1]")
    return (values >= acceptable).astype(np.float32)


def load_outcomes(
    path: Path,
    small_col: str,
    large_col: str,
    exclude: set[str] | None = None,
    acceptable: float = 0.5,
) -> OutcomeData:
    frame = _read_table(path)
    for col in ("prompt", small_col, large_col):
        if col not in frame.columns:
            raise DataError(f"{path}: missing column '{col}' (have: {', '.join(frame.columns)})")
    if exclude:
        frame = frame[~frame["prompt"].isin(exclude)].reset_index(drop=True)
    categories = frame["category"].astype(str).tolist() if "category" in frame else [None] * len(frame)
    return OutcomeData(
        prompts=frame["prompt"].astype(str).tolist(),
        small_ok=_correctness(frame[small_col], small_col, acceptable),
        large_ok=_correctness(frame[large_col], large_col, acceptable),
        categories=categories,
    )


def load_exclusions(path: Path | None) -> set[str]:
    """Prompts to drop (RouteLLM's contaminated_prompts.jsonl: any string field)."""
    if path is None:
        return set()
    prompts: set[str] = set()
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            prompts.update(v for v in record.values() if isinstance(v, str))
    return prompts


def split_indices(n: int, seed: int, test_fraction: float) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    order = np.random.RandomState(seed).permutation(n)
    cut = int(n * (1.0 - test_fraction))
    return np.sort(order[:cut]), np.sort(order[cut:])
