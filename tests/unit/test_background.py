"""Background tasks never fail silently: each failure is counted, the first of a streak
is a WARNING, the recovery an INFO; the pruners keep the stores bounded."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from background.periodic import Periodic
from gateway.metrics import GatewayMetrics
from shadow.retention import store_pruner
from shadow.config import RetentionConfig
from shadow.journal import RequestRecord, Journal


class Flaky:
    def __init__(self, outcomes: list[bool]) -> None:
        self.outcomes = outcomes

    async def __call__(self) -> None:
        if not self.outcomes.pop(0):
            raise ConnectionError("board restarting")


async def test_failures_are_counted_and_a_streak_is_logged_once(caplog):
    metrics = GatewayMetrics()
    task = Periodic(Flaky([False, False, False, True]), 0.2, "load-poller", metrics.background_failures_of)
    with caplog.at_level(logging.INFO, logger="background.periodic"):
        for _ in range(4):
            await task.run_once()
    assert metrics.registry.get_sample_value("gateway_background_failures_total", {"task": "load-poller"}) == 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "load-poller failed" in warnings[0].getMessage()
    assert any(r.levelno == logging.INFO and "recovered" in r.getMessage() for r in caplog.records)


async def test_store_pruner_applies_the_live_retention(tmp_path):
    store = Journal(tmp_path / "shadow.sqlite")
    now = datetime(2026, 11, 30, tzinfo=timezone.utc)
    for i, age in enumerate((1, 2, 60)):
        store.add_request(RequestRecord(request_id=f"r{i}", created_at=now - timedelta(days=age),
                                        target="large", prompt="p", draft="d"))
    live = {"config": RetentionConfig(days=30)}
    pruner = store_pruner(store, lambda: live["config"], GatewayMetrics().background_failures_of, clock=lambda: now)
    await pruner.run_once()
    assert store.rows()["requests"] == 2
    live["config"] = RetentionConfig(days=30, max_rows=1)  # a live change applies on the next run
    await pruner.run_once()
    assert [store.request(f"r{i}") is not None for i in range(3)] == [False, True, False]
