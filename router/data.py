"""Routing outcome data: prompts with the small and large models' correctness.

Accepts a CSV or JSONL file, or a directory of CSVs (RouteLLM's per-subject layout, the
file stem becoming the category). Correctness columns may be booleans, 0/1 or scores in
[0, 1] (a score of at least `acceptable` counts as acceptable). An empty cell is a row
that could not be graded (`router grade` leaves it so): the row is left out and counted,
not an error.

Both forms are kept: the scores (what "large strictly better" and quality compare) and
the acceptable flags (what the 4-outcome model classifies).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from router.asks import ASK_FEATURES, PLAIN, TAG_PREFIX, RequestAsks, asks_from_tags
from router.canary import prompt_key


class DataError(ValueError):
    pass


@dataclass(frozen=True)
class OutcomeData:
    prompts: list[str]
    small_ok: NDArray[np.float32]
    large_ok: NDArray[np.float32]
    categories: list[str | None]
    # Grades in [0, 1]; the ok flags when not given (rows labelled only ok / not ok).
    small_score: NDArray[np.float32] | None = None
    large_score: NDArray[np.float32] | None = None
    # Rows of the source left out when it was loaded because a chosen column was empty.
    ungraded: int = 0
    # What each request asked beyond its text; None: plain prompts (data without ask columns).
    asks: list[RequestAsks] | None = None

    def __post_init__(self) -> None:
        if self.small_score is None:
            object.__setattr__(self, "small_score", self.small_ok.astype(np.float32))
        if self.large_score is None:
            object.__setattr__(self, "large_score", self.large_ok.astype(np.float32))

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def small(self) -> NDArray[np.float32]:
        """The small tier's scores (never None after construction)."""
        assert self.small_score is not None
        return self.small_score

    @property
    def large(self) -> NDArray[np.float32]:
        assert self.large_score is not None
        return self.large_score

    @property
    def large_better(self) -> NDArray[np.float32]:
        """1 where the large tier scored strictly higher: what escalating gains."""
        return (self.large > self.small).astype(np.float32)

    def subset(self, idx: NDArray[np.int64]) -> "OutcomeData":
        return OutcomeData(
            prompts=[self.prompts[i] for i in idx],
            small_ok=self.small_ok[idx],
            large_ok=self.large_ok[idx],
            categories=[self.categories[i] for i in idx],
            small_score=self.small[idx],
            large_score=self.large[idx],
            ungraded=self.ungraded,
            asks=[self.asks[i] for i in idx] if self.asks is not None else None,
        )


def concat(*parts: OutcomeData) -> OutcomeData:
    """Rows of each part in turn, scores included."""
    return OutcomeData(
        prompts=[p for part in parts for p in part.prompts],
        small_ok=np.concatenate([part.small_ok for part in parts]).astype(np.float32),
        large_ok=np.concatenate([part.large_ok for part in parts]).astype(np.float32),
        categories=[c for part in parts for c in part.categories],
        small_score=np.concatenate([part.small for part in parts]).astype(np.float32),
        large_score=np.concatenate([part.large for part in parts]).astype(np.float32),
        ungraded=sum(part.ungraded for part in parts),
        asks=concat_asks(parts),
    )


def concat_asks(parts: Sequence[OutcomeData]) -> list[RequestAsks] | None:
    if all(part.asks is None for part in parts):
        return None
    return [a for part in parts for a in (part.asks or [PLAIN] * len(part))]


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


def _missing(column: pd.Series) -> NDArray[np.bool_]:
    return (column.isna() | (column.astype(str).str.strip() == "")).to_numpy()


def _scores(column: pd.Series, name: str) -> NDArray[np.float32]:
    """Grades in [0, 1] of a column without empty cells."""
    if column.dtype == object:
        lowered = column.astype(str).str.strip().str.lower()
        mapped = lowered.map({"true": 1.0, "false": 0.0}).fillna(pd.to_numeric(lowered, errors="coerce"))
        if mapped.isna().any():
            bad = column[mapped.isna()].iloc[0]
            raise DataError(f"column '{name}' has a value that is not a boolean or score: {bad!r}")
        values = mapped.to_numpy(dtype=np.float64)
    else:
        values = column.astype(float).to_numpy()
    if len(values) and (values.min() < 0 or values.max() > 1):
        raise DataError(f"column '{name}' must hold booleans, 0/1 or scores in [0, 1]")
    return values.astype(np.float32)


def _categories(frame: pd.DataFrame) -> list[str | None]:
    if "category" not in frame:
        return [None] * len(frame)
    return [None if missing else str(c) for c, missing in zip(frame["category"], _missing(frame["category"]))]


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
    graded = ~(_missing(frame[small_col]) | _missing(frame[large_col]))
    if len(frame) and not graded.any():
        raise DataError(f"{path}: no row has both '{small_col}' and '{large_col}' graded")
    frame = frame[graded].reset_index(drop=True)
    small, large = _scores(frame[small_col], small_col), _scores(frame[large_col], large_col)
    return OutcomeData(
        prompts=frame["prompt"].astype(str).tolist(),
        small_ok=(small >= acceptable).astype(np.float32),
        large_ok=(large >= acceptable).astype(np.float32),
        categories=_categories(frame),
        small_score=small,
        large_score=large,
        ungraded=int((~graded).sum()),
        asks=_asks(frame),
    )


def _asks(frame: pd.DataFrame) -> list[RequestAsks] | None:
    """`ask_*` columns (an own-pair export of agent traffic), all of them or none."""
    present = [name for name in ASK_FEATURES if name in frame.columns]
    if not present:
        return None
    if len(present) != len(ASK_FEATURES):
        missing = ", ".join(n for n in ASK_FEATURES if n not in present)
        raise DataError(f"ask columns come together: missing {missing}")
    tags = frame[list(ASK_FEATURES)].fillna(0).astype(float).astype(int).astype(str)
    return [asks_from_tags({TAG_PREFIX + k.removeprefix("ask_"): v for k, v in row.items()})
            for row in tags.to_dict("records")]


def data_digest(path: Path) -> str:
    """sha256 of a data file, or of a directory's CSVs (names and bytes, in name order)."""
    digest = hashlib.sha256()
    for file in sorted(path.glob("*.csv")) if path.is_dir() else [path]:
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


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


def tier_column(columns: Sequence[str], tier: str) -> str:
    """The score column of a tier's answers: `score:<tier>`, or the one `score:<tier>:…`
    (`score:small:auto`, a small adapter target) when that is all there is."""
    if f"score:{tier}" in columns:
        return f"score:{tier}"
    found = [c for c in columns if c.startswith(f"score:{tier}:")]
    if len(found) != 1:
        raise ValueError(f"graded outcomes need one score column for the {tier} tier; have {list(columns)}")
    return found[0]


def load_graded(path: Path, pair: tuple[str, str] = ("small", "large")) -> dict[str, tuple[float, float]]:
    """Graded outcomes (`router grade --out`) of a pair of tiers by prompt key, for the router
    canary (`router.canary.compare`); ungraded rows left out."""
    frame = pd.read_json(path, lines=True) if path.suffix == ".jsonl" else pd.read_csv(path)
    small, large = tier_column(list(frame.columns), pair[0]), tier_column(list(frame.columns), pair[1])
    frame = frame.dropna(subset=[small, large])
    return {
        prompt_key(str(prompt)): (float(s), float(l))
        for prompt, s, l in zip(frame["prompt"], frame[small], frame[large])
    }


def split_indices(n: int, seed: int, test_fraction: float) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    order = np.random.RandomState(seed).permutation(n)
    cut = int(n * (1.0 - test_fraction))
    return np.sort(order[:cut]), np.sort(order[cut:])
