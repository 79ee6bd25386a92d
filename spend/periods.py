"""Budget periods and the ledger's hour buckets: UTC calendar hours, days and months."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from spend.config import Period


def utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def hour_of(moment: datetime) -> datetime:
    return utc(moment).replace(minute=0, second=0, microsecond=0)


def period_start(period: Period, moment: datetime) -> datetime:
    day = hour_of(moment).replace(hour=0)
    return day if period == "day" else day.replace(day=1)


def period_end(period: Period, moment: datetime) -> datetime:
    """When the period holding `moment` resets: the next UTC midnight, or the next month's first."""
    start = period_start(period, moment)
    if period == "day":
        return start + timedelta(days=1)
    return (start + timedelta(days=32)).replace(day=1)
