"""The spend ledger (aggregation, reports, retention, permissions) and the running totals the
budgets read (spend.tally, spend.meter)."""

from __future__ import annotations

import asyncio
import stat
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client import CollectorRegistry

from spend.config import SpendSettings
from spend.ledger import Amount, PeriodTotals, RowKey, SpendLedger
from spend.meter import SpendMeter
from spend.metrics import SpendMetrics
from spend.prices import Charge
from spend.tally import SpendTally

NOW = datetime(2025, 3, 10, 18, 30, tzinfo=timezone.utc)
HOUR = NOW.replace(minute=0)


def amount(usd: float, requests: int = 1, name: str = "app") -> Amount:
    return Amount(requests, 10 * requests, 5 * requests, usd, 3 * usd, key_name=name)


def test_rows_aggregate_per_hour_key_category_and_tier(tmp_path):
    ledger = SpendLedger(tmp_path / "spend" / "spend.sqlite")
    row = RowKey(HOUR, "k1", "refund", "small")
    ledger.add({row: amount(0.5), RowKey(HOUR, "k1", "refund", "large"): amount(2.0)})
    ledger.add({row: amount(0.25)})
    assert ledger.rows() == 2  # the second write added to the first row
    (small,) = [line for line in ledger.report(NOW - timedelta(hours=1), "tier") if line.group == "small"]
    assert (small.amount.requests, small.amount.prompt_tokens, small.amount.usd) == (2, 20, pytest.approx(0.75))
    assert small.amount.saved_usd == pytest.approx(1.5)


def test_reports_by_key_category_tier_and_total(tmp_path):
    ledger = SpendLedger(tmp_path / "spend.sqlite")
    ledger.add({
        RowKey(HOUR, "k1", "refund", "small"): amount(1.0, name="app"),
        RowKey(HOUR, "k2", "", "large"): amount(3.0, name="batch"),
        RowKey(HOUR - timedelta(days=8), "k1", "refund", "large"): amount(50.0),
    })
    week = NOW - timedelta(days=7)
    by_key = ledger.report(week, "key")
    assert [(line.group, line.amount.key_name, line.amount.usd) for line in by_key] == [("k2", "batch", 3.0), ("k1", "app", 1.0)]
    assert [line.group for line in ledger.report(week, "category")] == ["", "refund"]
    (total,) = ledger.report(week)
    assert total.group == "" and total.amount.usd == 4.0 and total.amount.requests == 2
    assert ledger.report(NOW - timedelta(days=30))[0].amount.usd == 54.0


def test_key_totals_are_this_day_and_this_month(tmp_path):
    ledger = SpendLedger(tmp_path / "spend.sqlite")
    ledger.add({
        RowKey(HOUR, "k1", "", "small"): amount(1.0),
        RowKey(HOUR - timedelta(days=2), "k1", "", "small"): amount(2.0),
        RowKey(HOUR - timedelta(days=40), "k1", "", "small"): amount(100.0),  # last month
        RowKey(HOUR, "", "", "small"): amount(7.0),  # no key: no budget
    })
    totals = ledger.key_totals(NOW)
    assert set(totals) == {"k1"}
    assert (totals["k1"].day_usd, totals["k1"].month_usd) == (1.0, 3.0)


def test_tier_totals_count_every_caller_this_day_and_this_month(tmp_path):
    ledger = SpendLedger(tmp_path / "spend.sqlite")
    ledger.add({
        RowKey(HOUR, "k1", "", "large"): amount(1.0),
        RowKey(HOUR, "", "refund", "large"): amount(2.0),  # no key: still the tier's spend
        RowKey(HOUR - timedelta(days=2), "k2", "", "large"): amount(4.0),
        RowKey(HOUR, "k1", "", "small"): amount(0.5),
    })
    totals = ledger.tier_totals(NOW)
    assert (totals["large"].day_usd, totals["large"].month_usd) == (3.0, 7.0)
    assert totals["small"].day_usd == 0.5


def test_prune_by_age_then_rows(tmp_path):
    ledger = SpendLedger(tmp_path / "spend.sqlite")
    ledger.add({RowKey(HOUR - timedelta(hours=h), "k", "", "small"): amount(1.0) for h in range(10)})
    assert ledger.prune(HOUR - timedelta(hours=6), max_rows=1000) == 3  # hours 7, 8, 9
    assert ledger.prune(HOUR - timedelta(days=1), max_rows=4) == 3
    assert ledger.rows() == 4
    assert ledger.report(HOUR - timedelta(hours=3))[0].amount.requests == 4  # the newest kept


def test_the_ledger_is_private(tmp_path):
    ledger = SpendLedger(tmp_path / "private" / "spend.sqlite")
    assert stat.S_IMODE(ledger.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(ledger.path.parent.stat().st_mode) == 0o700


def test_tally_counts_written_in_flight_and_fresh_spend_once():
    start = PeriodTotals(NOW.replace(hour=0, minute=0), NOW.replace(day=1, hour=0, minute=0), 1.0, 5.0)
    tally = SpendTally({"k": start})
    tally.add("k", NOW, 0.5)
    assert tally.spent("k", "day", NOW) == 1.5 and tally.spent("k", "month", NOW) == 5.5
    tally.begin_write()
    tally.add("k", NOW, 0.25)
    assert tally.spent("k", "day", NOW) == 1.75  # in flight and fresh both count
    tally.abort_write()
    assert tally.spent("k", "day", NOW) == 1.75  # a failed write loses nothing
    tally.begin_write()
    tally.end_write({"k": PeriodTotals(start.day_start, start.month_start, 1.75, 5.75)})
    assert tally.spent("k", "day", NOW) == 1.75 and tally.spent("other", "day", NOW) == 0.0


def test_tally_periods_turn():
    tally = SpendTally()
    tally.add("k", NOW, 1.0)
    tomorrow = NOW + timedelta(days=1)
    assert tally.spent("k", "day", tomorrow) == 0.0 and tally.spent("k", "month", tomorrow) == 1.0
    tally.begin_write()
    tally.end_write(tally.folded(NOW))
    assert tally.spent("k", "day", NOW) == 1.0
    assert tally.spent("k", "day", tomorrow) == 0.0 and tally.spent("k", "month", tomorrow) == 1.0
    next_month = NOW + timedelta(days=31)
    tally.begin_write()
    tally.end_write(tally.folded(next_month))
    assert tally.folded(next_month) == {}  # a key idle since the month turned drops out


def meter(ledger: SpendLedger | None, clock=lambda: NOW, **settings) -> SpendMeter:
    return SpendMeter(SpendMetrics(CollectorRegistry()), ledger, SpendSettings(**settings), clock=clock)


def test_meter_writes_off_the_loop_and_a_restart_is_seeded_from_the_ledger(tmp_path):
    ledger = SpendLedger(tmp_path / "spend.sqlite")
    first = meter(ledger)
    for _ in range(3):
        first.record(Charge("large", 1000, 500, 0.01, 0.01), "k1", "app", "refund")
    assert first.pending == 1 and ledger.rows() == 0  # one aggregated row, not yet written
    asyncio.run(first.flush())
    (line,) = ledger.report(NOW - timedelta(hours=1), "key")
    assert (line.group, line.amount.requests, line.amount.prompt_tokens) == ("k1", 3, 3000)
    assert first.spent("k1", "day") == pytest.approx(0.03)
    restarted = meter(ledger)
    assert restarted.spent("k1", "day") == pytest.approx(0.03) and restarted.spent("k1", "month") == pytest.approx(0.03)


def test_meter_sees_another_replicas_spend_after_a_write(tmp_path):
    ledger = SpendLedger(tmp_path / "spend.sqlite")
    mine, theirs = meter(ledger), meter(ledger)
    theirs.record(Charge("small", 10, 10, 0.5, 1.0), "k1", "app", "")
    mine.record(Charge("small", 10, 10, 0.25, 1.0), "k1", "app", "")
    asyncio.run(theirs.flush())
    asyncio.run(mine.flush())
    assert mine.spent("k1", "day") == pytest.approx(0.75)


def test_meter_bounds_its_queue_and_counts_what_it_drops(tmp_path):
    m = meter(SpendLedger(tmp_path / "spend.sqlite"), max_pending=1)
    m.record(Charge("small", 1, 1, 0.1, 0.1), "k1", "a", "")
    m.record(Charge("small", 1, 1, 0.1, 0.1), "k2", "b", "")  # a second row: over the bound
    assert m.pending == 1 and m._metrics.ledger_dropped._value.get() == 1
    assert m.spent("k2", "day") == pytest.approx(0.1)  # the budget still counts it


def test_meter_without_a_ledger_keeps_the_totals_in_memory():
    m = meter(None)
    m.record(Charge("small", 1, 1, 0.1, 0.1), "k1", "a", "")
    asyncio.run(m.flush())
    m.record(Charge("small", 1, 1, 0.2, 0.2), "k1", "a", "")
    asyncio.run(m.flush())
    assert m.spent("k1", "month") == pytest.approx(0.3) and m.pending == 0


def test_meter_counts_each_tiers_spend_across_replicas_and_restarts(tmp_path):
    ledger = SpendLedger(tmp_path / "spend.sqlite")
    mine, theirs = meter(ledger), meter(ledger)
    mine.record(Charge("large", 10, 10, 0.5, 0.5), "k1", "a", "")
    mine.record(Charge("large", 10, 10, 0.25, 0.25), "", "", "")  # a caller without a key counts
    assert mine.tier_spent("large", "day") == pytest.approx(0.75) and mine.tier_spent("small", "day") == 0
    theirs.record(Charge("large", 10, 10, 1.0, 1.0), "k2", "b", "")
    asyncio.run(theirs.flush())
    asyncio.run(mine.flush())
    assert mine.tier_spent("large", "day") == pytest.approx(1.75)
    assert meter(ledger).tier_spent("large", "month") == pytest.approx(1.75)


def test_meter_counts_a_categorys_spend_per_tier_across_replicas_and_restarts(tmp_path):
    ledger = SpendLedger(tmp_path / "spend.sqlite")
    mine, theirs = meter(ledger), meter(ledger)
    mine.record(Charge("large", 10, 10, 0.5, 0.5), "k1", "a", "billing")
    mine.record(Charge("large", 10, 10, 0.25, 0.25), "", "", "refund")  # another category's
    mine.record(Charge("large", 10, 10, 0.125, 0.125), "", "", "")  # no category: no category's
    assert mine.category_tier_spent("billing", "large", "day") == pytest.approx(0.5)
    theirs.record(Charge("large", 10, 10, 1.0, 1.0), "k2", "b", "billing")
    asyncio.run(theirs.flush())
    asyncio.run(mine.flush())
    assert mine.category_tier_spent("billing", "large", "day") == pytest.approx(1.5)
    assert meter(ledger).category_tier_spent("billing", "large", "month") == pytest.approx(1.5)
    assert meter(ledger).category_tier_spent("refund", "large", "day") == pytest.approx(0.25)
    assert meter(ledger).category_tier_spent("billing", "small", "day") == 0
