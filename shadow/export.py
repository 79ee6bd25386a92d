"""The daily review sample: shadow pairs as CSV or markdown."""

from __future__ import annotations

import csv
import io
import re
from typing import Literal, Sequence

from shadow.journal import ShadowPair

Format = Literal["csv", "md"]
COLUMNS = (
    "created_at", "request_id", "primary_target", "shadow_target", "agreement", "length_delta",
    "primary_latency_s", "shadow_latency_s", "tags", "prompt", "primary_text", "shadow_text",
)
# A spreadsheet runs a cell that starts so as a formula; user text can (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


def _row(pair: ShadowPair) -> dict[str, str]:
    values = {
        "created_at": pair.created_at.isoformat(timespec="seconds"),
        "request_id": pair.request_id,
        "primary_target": pair.primary_target,
        "shadow_target": pair.shadow_target,
        "agreement": "" if pair.agreement is None else f"{pair.agreement:.3f}",
        "length_delta": str(pair.length_delta),
        "primary_latency_s": f"{pair.primary_latency_s:.2f}",
        "shadow_latency_s": f"{pair.shadow_latency_s:.2f}",
        "tags": ";".join(f"{k}={v}" for k, v in sorted(pair.tags.items())),
        "prompt": pair.prompt,
        "primary_text": pair.primary_text,
        "shadow_text": pair.shadow_text,
    }
    return values


def render(pairs: Sequence[ShadowPair], fmt: Format) -> str:
    rows = [_row(p) for p in pairs]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({column: _inert(value) for column, value in row.items()} for row in rows)
        return out.getvalue()
    return _markdown(rows)


def _inert(cell: str) -> str:
    """The cell as a spreadsheet shows it but never evaluates it (a number stays a number)."""
    if cell.startswith(FORMULA_START) and not NUMBER.match(cell):
        return "'" + cell
    return cell


def _markdown(rows: list[dict[str, str]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", "<br>")

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(row[c]) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines) + "\n"
