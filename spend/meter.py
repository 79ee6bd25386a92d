"""The serving side of spend: each answer's charge counted at once (Prometheus), added to
the key's running total (the budgets read it) and to the ledger's pending rows, which a
background step writes off the event loop, then re-reads every key's totals (every
replica's spend). The request path never waits and never raises here; a full queue drops
rows and counts them, and the running totals still hold them.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from typing import Callable

from background.failures import CountFailure, uncounted
from background.periodic import Periodic
from spend.config import Period, SpendSettings
from spend.ledger import Amount, PeriodTotals, RowKey, SpendLedger, category_tier
from spend.metrics import SpendMetrics
from spend.periods import hour_of
from spend.prices import Charge
from spend.tally import SpendTally

logger = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class SpendMeter:
    """`ledger` None: counters and running totals in memory only (nothing survives a restart)."""

    def __init__(
        self, metrics: SpendMetrics, ledger: SpendLedger | None = None, settings: SpendSettings | None = None,
        on_failure: CountFailure = uncounted, clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._metrics = metrics
        self._ledger = ledger
        self._settings = settings or SpendSettings()
        self._clock = clock
        # Seeded once at start, before the first request: a restart keeps each key's budget.
        self._tally = SpendTally(ledger.key_totals(clock()) if ledger is not None else None)
        self._tiers = SpendTally(ledger.tier_totals(clock()) if ledger is not None else None)  # tier budgets
        self._category_tiers = SpendTally(ledger.category_tier_totals(clock()) if ledger is not None else None)
        self._pending: dict[RowKey, Amount] = {}
        self._writer = Periodic(self.flush, self._settings.flush_s, "spend-ledger", on_failure)
        self._pruner = Periodic(self.prune, self._settings.prune_s, "spend-retention", on_failure)

    def record(self, charge: Charge, key_id: str, key_name: str, category: str) -> None:
        now = self._clock()
        self._metrics.charged(charge, category)
        if key_id:
            self._tally.add(key_id, now, charge.usd)
        self._tiers.add(charge.tier, now, charge.usd)
        if category:  # the bounded label: a known category or 'other'
            self._category_tiers.add(category_tier(category, charge.tier), now, charge.usd)
        if self._ledger is not None:
            amount = Amount(1, charge.prompt_tokens, charge.completion_tokens, charge.usd, charge.top_usd, key_name)
            self._queue(RowKey(hour_of(now), key_id, category, charge.tier), amount)

    def now(self) -> datetime:
        return self._clock()

    def spent(self, key_id: str, period: Period) -> float:
        return self._tally.spent(key_id, period, self._clock())

    def tier_spent(self, tier: str, period: Period) -> float:
        return self._tiers.spent(tier, period, self._clock())

    def category_tier_spent(self, category: str, tier: str, period: Period) -> float:
        return self._category_tiers.spent(category_tier(category, tier), period, self._clock())

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _queue(self, row: RowKey, amount: Amount) -> None:
        existing = self._pending.get(row)
        if existing is not None:
            existing.add(amount)
        elif len(self._pending) >= self._settings.max_pending:
            self._metrics.ledger_dropped.inc()
        else:
            self._pending[row] = amount

    async def flush(self) -> None:
        """Write the pending rows in one transaction, then re-read every key's and tier's totals."""
        batch, self._pending = self._pending, {}
        tallies = (self._tally, self._tiers, self._category_tiers)
        for tally in tallies:
            tally.begin_write()
        if self._ledger is None:
            for tally in tallies:
                tally.end_write(tally.folded(self._clock()))
            return
        try:
            if batch:
                await asyncio.to_thread(self._ledger.add, batch)
        except Exception:
            for tally in tallies:
                tally.abort_write()
            for row, amount in batch.items():  # retried on the next step
                self._queue(row, amount)
            raise  # counted and logged by the Periodic's failure log
        totals = await asyncio.to_thread(self._read_totals, self._ledger, self._clock())
        for tally, read in zip(tallies, totals):
            tally.end_write(read)

    @staticmethod
    def _read_totals(ledger: SpendLedger, now: datetime) -> tuple[dict[str, PeriodTotals], ...]:
        return ledger.key_totals(now), ledger.tier_totals(now), ledger.category_tier_totals(now)

    async def prune(self) -> None:
        if self._ledger is None:
            return
        older_than = self._clock() - timedelta(days=self._settings.retention_days)
        removed = await asyncio.to_thread(self._ledger.prune, older_than, self._settings.max_rows)
        if removed:
            logger.info("spend ledger pruned: %d rows", removed)

    def start(self) -> None:
        self._writer.start()
        self._pruner.start()

    async def stop(self) -> None:
        await self._writer.stop()
        await self._pruner.stop()
        try:
            await self.flush()  # what was answered before shutdown is still recorded
        except Exception:
            logger.exception("spend ledger: last write failed")
            self._metrics.ledger_dropped.inc(len(self._pending))
