"""A tiny real router model for tests (`router train` on generated rows, ~10 s)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from typer.testing import CliRunner

EASY = ["where is my order", "reset my password", "change my email", "track my parcel"]
HARD = ["prove the integral converges except when n is negative",
        "compute the eigenvalues of the matrix unless it is singular",
        "derive the tax liability for a cross-border refund in two currencies"]


def outcomes_csv(path: Path, rows: int = 120, seed: int = 0, shuffled: bool = False) -> Path:
    """Hard prompts: small fails, large succeeds; easy ones: both succeed (10 % noise).
    `shuffled`: the same rows with the small outcomes permuted (a deliberately bad label set)."""
    rng = random.Random(seed)
    records = []
    for i in range(rows):
        hard = i % 2 == 0
        small_ok = (not hard) if rng.random() > 0.1 else hard
        records.append((f"{rng.choice(HARD if hard else EASY)} ({i})", "support" if not hard else "math",
                        int(small_ok)))
    if shuffled:
        labels = [r[2] for r in records]
        rng.shuffle(labels)
        records = [(p, c, s) for (p, c, _), s in zip(records, labels)]
    lines = ["prompt,category,score:small,score:large"]
    lines += [f"\"{p}\",{c},{s},1" for p, c, s in records]
    path.write_text("\n".join(lines) + "\n")
    return path


def train_tiny_router(out: Path, data: Path, version: str = "tiny", pair: tuple[str, str] = ("small", "large")) -> Path:
    """`pair`: the tiers whose outcomes these are (a step router's: e.g. large, frontier)."""
    from router.cli import app as router_cli

    if pair != ("small", "large"):
        lines = data.read_text().splitlines()
        lines[0] = f"prompt,category,score:{pair[0]},score:{pair[1]}"
        data = data.with_name(f"{data.stem}-{pair[1]}.csv")
        data.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(router_cli, [
        "train", "--data", str(data), "--small-col", f"score:{pair[0]}", "--large-col", f"score:{pair[1]}",
        "--out", str(out), "--threads", "1", "--version", version,
    ])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    if not manifest.get("tiers"):  # trained on score:<target> columns: these tiers' outcomes
        manifest["tiers"] = {"small": "small", "large": "large"}
        (out / "manifest.json").write_text(json.dumps(manifest))
    return out
