"""The gate's labelled messages (data/gate/gate.csv, built by scripts/build_gate_data.py)."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from gate.verdict import GateLabel

SHIPPED_DATA = Path(__file__).resolve().parents[1] / "data" / "gate" / "gate.csv"
LABELS: tuple[GateLabel, ...] = get_args(GateLabel)
NOT_ANSWERABLE: tuple[GateLabel, ...] = ("chitchat", "no_context")
Split = Literal["all", "train", "test"]


class DataError(ValueError):
    """The data file is missing a column or holds an unknown label."""


@dataclass(frozen=True)
class GateData:
    texts: list[str]
    labels: list[GateLabel]
    sources: list[str]
    groups: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, keep: list[bool]) -> GateData:
        def pick(values: list) -> list:  # noqa: ANN001 - one of the columns above
            return [v for v, k in zip(values, keep) if k]

        return GateData(pick(self.texts), pick(self.labels), pick(self.sources), pick(self.groups))


def load_data(path: Path, split: Split = "all") -> GateData:
    """Rows of `split` (the `split` column; `all` for every row)."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    missing = {"text", "label"} - set(rows[0] if rows else {})
    if missing:
        raise DataError(f"{path}: missing column(s) {sorted(missing)}")
    if split != "all":
        rows = [r for r in rows if r.get("split", "train") == split]
    unknown = {r["label"] for r in rows} - set(LABELS)
    if unknown:
        raise DataError(f"{path}: unknown label(s) {sorted(unknown)} (expected {list(LABELS)})")
    return GateData(
        texts=[r["text"] for r in rows],
        labels=[r["label"] for r in rows],  # type: ignore[misc]  # checked above
        sources=[r.get("source") or "unknown" for r in rows],
        groups=[r.get("group") or r["text"] for r in rows],
    )


def data_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
