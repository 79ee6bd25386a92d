"""Each key's (or, in a second tally, each tier's) spend in its budget's current period, in
memory: the budget check reads no store and calls no actor.

The total is the ledger's, as last read (every replica's written spend), plus what this
replica spent since: `fresh` since the last write began, `in_flight` while a write runs
(its read-back then includes it). Bounded: one total per key that spent this month, and
the hours of one write interval.
"""

from __future__ import annotations

from datetime import datetime
from typing import Mapping

from spend.config import Period
from spend.ledger import PeriodTotals
from spend.periods import hour_of, period_start

Hours = dict[str, dict[datetime, float]]  # key id -> hour -> USD


class SpendTally:
    def __init__(self, base: Mapping[str, PeriodTotals] | None = None) -> None:
        self._base: dict[str, PeriodTotals] = dict(base or {})
        self._fresh: Hours = {}
        self._in_flight: Hours = {}

    def add(self, key_id: str, moment: datetime, usd: float) -> None:
        hours = self._fresh.setdefault(key_id, {})
        hour = hour_of(moment)
        hours[hour] = hours.get(hour, 0.0) + usd

    def spent(self, key_id: str, period: Period, now: datetime) -> float:
        start = period_start(period, now)
        base = self._base.get(key_id)
        total = _base_usd(base, period, start) if base is not None else 0.0
        for hours in (self._in_flight.get(key_id), self._fresh.get(key_id)):
            total += sum(usd for hour, usd in (hours or {}).items() if hour >= start)
        return total

    def begin_write(self) -> None:
        """A write of the pending spend begins: what is fresh now is in flight."""
        for key, hours in self._fresh.items():
            into = self._in_flight.setdefault(key, {})
            for hour, usd in hours.items():
                into[hour] = into.get(hour, 0.0) + usd
        self._fresh = {}

    def end_write(self, totals: Mapping[str, PeriodTotals]) -> None:
        """The write landed and `totals` were read after it: they include what was in flight."""
        self._base, self._in_flight = dict(totals), {}

    def abort_write(self) -> None:
        """The write failed: what was in flight is fresh again (the next write retries it)."""
        in_flight, self._in_flight = self._in_flight, {}
        for key, hours in self._fresh.items():
            into = in_flight.setdefault(key, {})
            for hour, usd in hours.items():
                into[hour] = into.get(hour, 0.0) + usd
        self._fresh = in_flight

    def folded(self, now: datetime) -> dict[str, PeriodTotals]:
        """The totals without a ledger: the last ones plus what is in flight, in memory."""
        day, month = period_start("day", now), period_start("month", now)
        totals: dict[str, PeriodTotals] = {}
        for key in {*self._base, *self._in_flight}:
            base = self._base.get(key)
            hours = self._in_flight.get(key, {})
            day_usd = (_base_usd(base, "day", day) if base else 0.0) + sum(u for h, u in hours.items() if h >= day)
            month_usd = (_base_usd(base, "month", month) if base else 0.0) + sum(
                u for h, u in hours.items() if h >= month
            )
            if month_usd > 0:  # a key idle since the month turned drops out
                totals[key] = PeriodTotals(day, month, day_usd, month_usd)
        return totals


def _base_usd(base: PeriodTotals, period: Period, start: datetime) -> float:
    """The base's total for the period starting at `start`; 0 once that period has turned."""
    if period == "day":
        return base.day_usd if base.day_start == start else 0.0
    return base.month_usd if base.month_start == start else 0.0
