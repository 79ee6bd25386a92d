"""Training labels from shadow traffic: the router flywheel.

The gateway mirrors a sample of the queries it sent to the large tier to the small tier
and scores how much the two answers agree. Each such pair is a labelled routing outcome:
the large answer is the reference (large_ok = 1), and the small model "would have been
fine" (small_ok = 1) when the agreement reaches a threshold, or, with a grader
(`router.grading`: the reference grader against the large answer, an LLM judge), when
the grader passes the small answer. Appended to the outcome data,
these rows teach the router the traffic it actually serves.

Pure: pairs in, rows out. The CLI reads the pairs through a `PairReader` that its entry
point hands in (the shadow store's); this module only needs their shape (`LabelledPair`),
so `router/` stays free of `shadow/`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol

import numpy as np

from router.asks import asks_from_tags
from router.data import OutcomeData, concat_asks
from router.grading.protocol import GradeItem, Grader

DEFAULT_THRESHOLD = 0.8
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class LabelledPair(Protocol):
    """What the flywheel reads of a `shadow.journal.ShadowPair`."""

    @property
    def primary_target(self) -> str: ...
    @property
    def shadow_target(self) -> str: ...
    @property
    def prompt(self) -> str: ...
    @property
    def tags(self) -> Mapping[str, str]: ...
    @property
    def agreement(self) -> float | None: ...
    @property
    def primary_text(self) -> str: ...
    @property
    def shadow_text(self) -> str: ...


class PairReader(Protocol):
    """The scored shadow pairs of a store, created at or after `since` (all when None)."""

    def __call__(self, store: Path, since: datetime | None) -> Sequence[LabelledPair]: ...


@dataclass(frozen=True)
class ShadowRows:
    outcomes: OutcomeData
    threshold: float

    @property
    def small_ok_share(self) -> float | None:
        return float(self.outcomes.small_ok.mean()) if len(self.outcomes) else None

    def summary(self) -> dict[str, float | int | None]:
        """What the artifact's manifest records of the shadow labels it was trained on."""
        return {"rows": len(self.outcomes), "small_ok_share": self.small_ok_share, "threshold": self.threshold}


def is_flywheel_pair(pair: LabelledPair) -> bool:
    """Large answered, the small tier (base or an adapter, 'small:…') shadowed."""
    target = pair.shadow_target
    return pair.primary_target == "large" and (target == "small" or target.startswith("small:"))


def shadow_outcomes(
    pairs: Sequence[LabelledPair], threshold: float = DEFAULT_THRESHOLD, exclude: frozenset[str] = frozenset(),
    grader: Grader | None = None,
) -> ShadowRows:
    """Outcome rows from the flywheel pairs: scored by their stored agreement (pairs not
    scored are left out), or by `grader` (pairs it cannot grade are left out)."""
    kept = [p for p in pairs if is_flywheel_pair(p) and p.prompt not in exclude]
    if grader is None:
        kept = [p for p in kept if p.agreement is not None]
        small_ok = [1.0 if (p.agreement or 0.0) >= threshold else 0.0 for p in kept]
    else:
        items = [GradeItem(prompt=p.prompt, answer=p.shadow_text, reference=p.primary_text,
                           category=p.tags.get("category") or None, target=p.shadow_target) for p in kept]
        graded = [(p, score) for p, score in zip(kept, grader.grade(items)) if score is not None]
        kept = [p for p, _ in graded]
        small_ok = [1.0 if score >= 0.5 else 0.0 for _, score in graded]
    return ShadowRows(
        outcomes=OutcomeData(
            prompts=[p.prompt for p in kept],
            small_ok=np.asarray(small_ok, dtype=np.float32),
            large_ok=np.ones(len(kept), dtype=np.float32),
            # An empty tag means the client sent none, the same as a missing one.
            categories=[p.tags.get("category") or None for p in kept],
            asks=[asks_from_tags(p.tags) for p in kept],  # a journaled request's ask.* tags
        ),
        threshold=threshold,
    )


def concat(first: OutcomeData, second: OutcomeData) -> OutcomeData:
    return OutcomeData(
        prompts=[*first.prompts, *second.prompts],
        small_ok=np.concatenate([first.small_ok, second.small_ok]).astype(np.float32),
        large_ok=np.concatenate([first.large_ok, second.large_ok]).astype(np.float32),
        categories=[*first.categories, *second.categories],
        asks=concat_asks([first, second]),
    )


def parse_since(value: str, now: datetime) -> datetime:
    """'30d', '12h', '90m', '2w' back from `now`, or an ISO date/time (UTC unless it says)."""
    match = _DURATION.match(value)
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is neither a duration like 30d, 12h, 90m nor an ISO date") from None
    # The store compares ISO strings in UTC, so another offset must be converted, not kept.
    aware = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return aware.astimezone(timezone.utc)
