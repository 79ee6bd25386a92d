"""`deployments.load_board`: which replica reports count (fresh) and which tiers exist (alive).

The Ray actor's class runs as a plain object; its clock is `time.monotonic` read through
the module, replaced here by a manual one. No Ray runtime.
"""

from __future__ import annotations

import threading
import types

import pytest
from ray.exceptions import ActorDiedError

from deployments import load_board
from deployments.named_actor import NamedActor
from deployments.load_board import (
    ALIVE_FOR_S, FRESH_FOR_S, UPSTREAM_FRESH_FOR_S, WARM_UP_S, BoardClient, LoadBoard, LoadPublisher,
)
from engines.types import AdapterReport, EngineLoad
from router.decision import TierLoad


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    # Only this module's view of `time` changes, not the interpreter's.
    monkeypatch.setattr(load_board, "time", types.SimpleNamespace(monotonic=clock))
    return clock


@pytest.fixture
def board(clock: Clock) -> LoadBoard:
    board = LoadBoard()
    clock.now += WARM_UP_S  # past its warm-up: what it holds is what it says
    return board


def test_a_new_board_says_nothing_until_every_replica_had_time_to_report(clock):
    # A board created again (its owner replica gone) must not mark the tiers it has not
    # heard from yet as down: an empty snapshot says nothing.
    board = LoadBoard()
    board.report("small", "r1", EngineLoad(running=1))
    clock.now += WARM_UP_S - 0.01
    assert board.snapshot() == {}
    board.report("large", "r2", EngineLoad(running=2))
    clock.now += 0.01
    assert board.snapshot() == {"small": TierLoad(running=1), "large": TierLoad(running=2)}
    assert load_board.HEARTBEAT_S + load_board.REPORT_INTERVAL_S < WARM_UP_S


def test_windows_are_ordered():
    # The rules below need a stale-but-alive band: fresh window shorter than the alive one.
    assert 0 < load_board.REPORT_INTERVAL_S < FRESH_FOR_S < ALIVE_FOR_S


def test_fresh_reports_of_a_tier_are_summed(board, clock):
    board.report("small", "r1", EngineLoad(running=2, waiting=1))
    board.report("small", "r2", EngineLoad(running=3, waiting=4))
    board.report("large", "r3", EngineLoad(running=1, waiting=0))
    clock.now += 0.5
    assert board.snapshot() == {"small": TierLoad(running=5, waiting=5), "large": TierLoad(running=1, waiting=0)}


def test_a_replicas_latest_report_replaces_its_previous_one(board, clock):
    board.report("small", "r1", EngineLoad(running=9, waiting=9))
    clock.now += 0.2
    board.report("small", "r1", EngineLoad(running=1, waiting=0))
    assert board.snapshot() == {"small": TierLoad(running=1, waiting=0)}


def test_report_exactly_at_the_fresh_window_still_counts(board, clock):
    board.report("small", "r1", EngineLoad(running=2, waiting=3))
    clock.now += FRESH_FOR_S
    assert board.snapshot()["small"] == TierLoad(running=2, waiting=3)


def test_report_older_than_the_fresh_window_is_not_counted_but_the_tier_stays(board, clock):
    board.report("small", "stuck", EngineLoad(running=50, waiting=50))
    clock.now += FRESH_FOR_S + 0.01
    board.report("small", "ok", EngineLoad(running=1, waiting=2))
    snap = board.snapshot()
    assert snap["small"] == TierLoad(running=1, waiting=2)  # the stuck replica's load is ignored


def test_tier_with_only_stale_replicas_is_present_with_zero_load(board, clock):
    board.report("large", "r1", EngineLoad(running=7, waiting=7))
    clock.now += (FRESH_FOR_S + ALIVE_FOR_S) / 2  # stale but alive
    snap = board.snapshot()
    assert "large" in snap  # a live tier: requests are not failed fast
    assert snap["large"] == TierLoad(running=0, waiting=0)


def test_report_exactly_at_the_alive_window_keeps_the_tier(board, clock):
    board.report("large", "r1", EngineLoad(running=7, waiting=7))
    clock.now += ALIVE_FOR_S
    assert board.snapshot() == {"large": TierLoad()}


def test_tier_whose_replicas_all_went_silent_is_absent(board, clock):
    board.report("large", "r1", EngineLoad(running=7, waiting=7))
    board.report("large", "r2", EngineLoad(running=1, waiting=1))
    board.report("small", "r3", EngineLoad(running=1, waiting=0))
    clock.now += ALIVE_FOR_S + 0.01
    board.report("small", "r3", EngineLoad(running=1, waiting=0))
    assert board.snapshot() == {"small": TierLoad(running=1, waiting=0)}


def test_dead_replica_does_not_count_next_to_a_live_one(board, clock):
    board.report("small", "dead", EngineLoad(running=40, waiting=40))
    clock.now += ALIVE_FOR_S + 1
    board.report("small", "live", EngineLoad(running=1, waiting=1))
    assert board.snapshot() == {"small": TierLoad(running=1, waiting=1)}


def test_a_replica_that_reports_again_comes_back(board, clock):
    board.report("large", "r1", EngineLoad(running=3, waiting=0))
    clock.now += ALIVE_FOR_S + 1
    assert board.snapshot() == {}
    board.report("large", "r1", EngineLoad(running=2, waiting=1))
    assert board.snapshot() == {"large": TierLoad(running=2, waiting=1)}


def test_empty_board_has_no_tiers(board, clock):
    assert board.snapshot() == {}


# -- adapter reports: alive window only ------------------------------------------------------

def test_adapter_reports_of_live_replicas_of_the_asked_tier(board, clock):
    small_report = AdapterReport(generation=3, loaded=["refund@v2"])
    board.report("small", "r1", EngineLoad(), small_report)
    board.report("large", "r2", EngineLoad(), AdapterReport(generation=1))
    clock.now += FRESH_FOR_S + 1  # stale for load, still alive for adapters
    assert board.adapter_reports("small") == {"r1": small_report}
    assert board.adapter_reports("large") == {"r2": AdapterReport(generation=1)}
    assert board.adapter_reports("candidate") == {}


def test_adapter_report_of_a_silent_replica_is_dropped(board, clock):
    board.report("small", "gone", EngineLoad(), AdapterReport(generation=1))
    clock.now += ALIVE_FOR_S + 0.01
    board.report("small", "live", EngineLoad(), AdapterReport(generation=2))
    assert set(board.adapter_reports("small")) == {"live"}


def test_load_report_without_adapters_keeps_the_last_adapter_report_and_its_age(board, clock):
    first = AdapterReport(generation=5, loaded=["a"])
    board.report("small", "r1", EngineLoad(), first)
    clock.now += 1.0
    board.report("small", "r1", EngineLoad(running=1))  # adapters=None: no new adapter info
    assert board.adapter_reports("small") == {"r1": first}
    # The adapter report ages from when it was sent, not from the later load report.
    clock.now += ALIVE_FOR_S - 0.5
    assert board.snapshot() == {"small": TierLoad()}  # the replica is alive
    assert board.adapter_reports("small") == {}


# -- the handle-side helpers -----------------------------------------------------------------

class _Method:
    def __init__(self, result=None, error: BaseException | None = None) -> None:
        self.result, self.error = result, error
        self.calls: list[tuple] = []
        self.called = threading.Event()

    def remote(self, *args):
        """An actor method: the call's result is awaited."""
        self.calls.append(args)
        self.called.set()
        if self.error is not None:
            raise self.error

        async def done():
            return self.result

        return done()

    def __call__(self, *args, timeout_s: float) -> None:
        """`BoardClient.report`, as the publisher's thread calls it."""
        self.remote(*args).close()


def _client_of(actor) -> BoardClient:
    named = NamedActor(load_board._BoardActor, "app:load-board")
    named._actor = actor  # resolved already (resolving needs Ray)
    return BoardClient(named)


async def test_board_client_returns_the_boards_snapshot_and_reports():
    snapshot = {"small": TierLoad(running=1, waiting=2)}
    actor = types.SimpleNamespace(snapshot=_Method(result=snapshot), adapter_reports=_Method(result={}))
    client = _client_of(actor)
    assert await client.snapshot() == snapshot
    assert await client.adapter_reports("small") == {}
    assert actor.snapshot.calls == [()] and actor.adapter_reports.calls == [("small",)]


async def test_a_dead_board_is_dropped_so_the_next_call_resolves_the_name_again():
    actor = types.SimpleNamespace(snapshot=_Method(error=ActorDiedError()))  # its owner is gone
    client = _client_of(actor)
    with pytest.raises(ActorDiedError):
        await client.snapshot()
    assert client._actor._actor is None


async def test_a_failed_call_on_a_live_board_keeps_the_actor():
    actor = types.SimpleNamespace(snapshot=_Method(error=RuntimeError("snapshot failed")))
    client = _client_of(actor)
    with pytest.raises(RuntimeError):
        await client.snapshot()
    assert client._actor._actor is actor


def test_publisher_keeps_reporting_when_the_board_call_fails(monkeypatch):
    monkeypatch.setattr(load_board, "REPORT_INTERVAL_S", 0.01)
    failing = _Method(error=RuntimeError("board restarting"))
    board = types.SimpleNamespace(report=failing)
    reads = []

    def read() -> EngineLoad:
        reads.append(1)
        return EngineLoad(running=len(reads))

    publisher = LoadPublisher(board, "small", "r1", read, adapters=lambda: AdapterReport(generation=4))
    publisher.start()
    try:
        assert failing.called.wait(2.0)
        deadline = threading.Event()
        for _ in range(200):  # several reports despite every call raising
            if len(failing.calls) >= 3:
                break
            deadline.wait(0.01)
    finally:
        publisher.stop()
        publisher._thread.join(2.0)
    assert len(failing.calls) >= 3
    assert not publisher._thread.is_alive()
    tier, replica, load, adapters, _ = failing.calls[0]
    assert (tier, replica, load.running, adapters.generation) == ("small", "r1", 1, 4)


def test_a_direct_tiers_scraped_queue_is_a_floor_not_a_sum(board, clock):
    # Two ingress replicas call the same upstream: their in-flight counts add up; the
    # upstream's queue, scraped by both, already holds both replicas' requests.
    board.report("large", "direct-i1", EngineLoad(running=2), upstream=EngineLoad(running=4, waiting=6))
    board.report("large", "direct-i2", EngineLoad(running=1), upstream=EngineLoad(running=4, waiting=5))
    assert board.snapshot() == {"large": TierLoad(running=4, waiting=5)}  # the latest scrape
    board.report("large", "direct-i1", EngineLoad(running=2), upstream=EngineLoad(running=1))  # lags
    assert board.snapshot() == {"large": TierLoad(running=3, waiting=0)}


def test_a_scrape_outlives_a_lagging_publisher_but_not_long(board, clock):
    # Requests other clients sent straight to the upstream show only in the scrape: a
    # publisher late by a second or two must not hide them from the router.
    board.report("large", "direct-i1", EngineLoad(running=0), upstream=EngineLoad(running=1, waiting=2))
    clock.now += FRESH_FOR_S + 0.5
    board.report("large", "direct-i1", EngineLoad(running=0))  # the scrape's next report is late
    assert board.snapshot() == {"large": TierLoad(running=1, waiting=2)}
    clock.now += UPSTREAM_FRESH_FOR_S  # a scrape this old no longer counts
    board.report("large", "direct-i1", EngineLoad(running=2))
    assert board.snapshot() == {"large": TierLoad(running=2, waiting=0)}


def test_an_upstream_scrape_alone_does_not_make_a_tier_alive(board, clock):
    board.report("large", "direct-i1", EngineLoad(), upstream=EngineLoad(running=3))
    clock.now += ALIVE_FOR_S + 0.1
    assert board.snapshot() == {}


def test_publisher_sends_the_upstream_scrape_in_the_same_report():
    report = _Blocking()
    board = types.SimpleNamespace(report=report)
    scraped: list[EngineLoad | None] = [None]
    publisher = LoadPublisher(board, "large", "direct-i1", lambda: EngineLoad(running=1), upstream=lambda: scraped[0])
    publisher.publish_if_due(0.0)
    scraped[0] = EngineLoad(running=5, waiting=2)
    publisher.publish_if_due(0.0)
    assert [call[4] for call in report.calls] == [None, EngineLoad(running=5, waiting=2)]  # one call each


class _Blocking:
    """`BoardClient.report` as the publisher's thread sees it: blocking, with a timeout."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __call__(self, *args, timeout_s: float) -> None:
        self.calls.append(args)


def test_an_unchanged_load_is_reported_again_only_after_the_heartbeat():
    report = _Blocking()
    board = types.SimpleNamespace(report=report)
    load = [EngineLoad(running=1)]
    publisher = LoadPublisher(board, "small", "r1", lambda: load[0])
    publisher.publish_if_due(10.0)
    publisher.publish_if_due(10.2)  # same load, 0.2 s later: the board still holds it
    assert len(report.calls) == 1
    load[0] = EngineLoad(running=2)
    publisher.publish_if_due(10.25)  # a change goes at once
    publisher.publish_if_due(10.3 + load_board.HEARTBEAT_S)  # unchanged, but due again
    assert [call[2].running for call in report.calls] == [1, 2, 2]
    # Always fresh on the board between heartbeats, with a tick of lag to spare.
    assert load_board.HEARTBEAT_S + load_board.REPORT_INTERVAL_S < load_board.FRESH_FOR_S


def test_a_report_the_board_did_not_take_goes_again_next_tick():
    failing = _Method(error=RuntimeError("board restarting"))
    publisher = LoadPublisher(types.SimpleNamespace(report=failing), "small", "r1", lambda: EngineLoad(running=1))
    publisher.publish_if_due(10.0)
    publisher.publish_if_due(10.2)
    assert len(failing.calls) == 2
