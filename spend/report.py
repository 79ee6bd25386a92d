"""`gateway spend`: the ledger's spend since a time, as a table or JSON; per key, category or
tier, with what the same tokens would have cost on the top tier and what routing saved."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from spend.ledger import By, SpendLine, sum_rows
from spend.periods import hour_of


def as_json(lines: Sequence[SpendLine], since: datetime, by: By | None) -> dict[str, Any]:
    total = sum_rows([line.amount for line in lines])
    return {
        "since": hour_of(since).isoformat(timespec="seconds"),  # the ledger keeps whole hours
        "by": by,
        "rows": [{by or "group": line.group, **_figures(line, by)} for line in lines] if by else [],
        "total": _figures(SpendLine("", total), None),
    }


def _figures(line: SpendLine, by: By | None) -> dict[str, Any]:
    a = line.amount
    figures: dict[str, Any] = {"key_name": a.key_name} if by == "key" else {}
    return {
        **figures, "requests": a.requests, "prompt_tokens": a.prompt_tokens,
        "completion_tokens": a.completion_tokens, "spend_usd": round(a.usd, 6),
        "top_tier_usd": round(a.top_usd, 6), "saved_usd": round(a.saved_usd, 6),
    }


def as_text(lines: Sequence[SpendLine], since: datetime, by: By | None) -> str:
    header = f"spend from {hour_of(since):%Y-%m-%d %H:00} UTC (whole hours)"
    rows = [(_label(line, by), line) for line in lines] if by else []
    rows.append(("total", SpendLine("", sum_rows([line.amount for line in lines]))))
    width = max(12, *(len(name) for name, _ in rows))
    out = [header, f"{(by or ''):<{width}} {'requests':>9} {'prompt tok':>11} {'compl. tok':>11} "
           f"{'spend $':>12} {'top tier $':>12} {'saved $':>12}"]
    for name, line in rows:
        a = line.amount
        out.append(f"{name:<{width}} {a.requests:>9} {a.prompt_tokens:>11} {a.completion_tokens:>11} "
                   f"{a.usd:>12.4f} {a.top_usd:>12.4f} {a.saved_usd:>12.4f}")
    return "\n".join(out)


def _label(line: SpendLine, by: By | None) -> str:
    if by == "key":
        return f"{line.group} ({line.amount.key_name})" if line.group else "(no key)"
    return line.group or "(none)"
