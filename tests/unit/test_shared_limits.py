"""Rate limits shared by ingress replicas: admitted locally, synced in the background
(gateway/shared_limits.py), against the board's state (deployments/limit_board.py, its
plain class: the Ray actor is this class)."""

from __future__ import annotations

import asyncio

import pytest

from deployments.limit_board import LimitBoard
from gateway.shared_limits import HEARTBEAT_S, KeyCounts, SharedWindows, SyncedRateLimiter


class Clock:
    def __init__(self, now: float = 6_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class BoardSync:
    """`LimitSync` for one replica over an in-process board (swappable: a board created again)."""

    def __init__(self, board: LimitBoard, replica: str) -> None:
        self.board, self.replica, self.calls = board, replica, 0

    async def __call__(self, window: int, own: KeyCounts) -> KeyCounts:
        self.calls += 1
        return self.board.sync(self.replica, window, own)


def replica(board: LimitBoard, name: str, clock: Clock) -> tuple[SyncedRateLimiter, BoardSync]:
    sync = BoardSync(board, name)
    return SyncedRateLimiter(sync, SharedWindows(clock), clock=clock), sync


def pair() -> tuple[Clock, LimitBoard, SyncedRateLimiter, SyncedRateLimiter]:
    """Two ingress replicas over one board."""
    clock, board = Clock(), LimitBoard()
    return clock, board, replica(board, "a", clock)[0], replica(board, "b", clock)[0]


def allowed(limiter: SyncedRateLimiter, rpm: int | None = None, tpm: int | None = None) -> bool:
    return asyncio.run(limiter.admit("k", rpm, tpm)).allowed


def test_two_replicas_enforce_one_budget_after_a_sync() -> None:
    clock, board, a, b = pair()
    assert allowed(a, rpm=3) and allowed(a, rpm=3)
    asyncio.run(a.sync())
    assert allowed(b, rpm=3)  # its first: on its own count, the others' come with the sync
    asyncio.run(b.sync())
    assert not allowed(b, rpm=3)  # 2 at a + 1 here
    clock.now += HEARTBEAT_S  # nothing new at a: it hears the others at its heartbeat
    asyncio.run(a.sync())
    assert not allowed(a, rpm=3)  # a learned b's one


def test_without_a_sync_each_replica_counts_only_its_own() -> None:
    """The bound the module states: between syncs a replica sees only its own admissions."""
    clock, board, a, b = pair()
    assert allowed(a, rpm=1) and allowed(b, rpm=1)
    assert not allowed(a, rpm=1)


def test_tokens_charged_at_one_replica_refuse_at_another() -> None:
    clock, board, a, b = pair()
    assert allowed(a, tpm=100)
    asyncio.run(a.charge("k", 100))
    asyncio.run(a.sync())
    assert allowed(b, tpm=100)
    asyncio.run(b.sync())
    admission = asyncio.run(b.admit("k", None, 100))
    assert not admission.allowed and admission.limit == "tokens"
    assert 0 < admission.retry_after_s <= 60


def test_a_board_created_again_is_refilled_by_the_next_syncs() -> None:
    clock = Clock()
    a, a_sync = replica(LimitBoard(), "a", clock)
    b, b_sync = replica(a_sync.board, "b", clock)
    assert allowed(a, rpm=3) and allowed(a, rpm=3) and allowed(b, rpm=3)
    asyncio.run(a.sync())
    asyncio.run(b.sync())
    fresh = LimitBoard()  # the owner replica went; the next call creates the board again
    a_sync.board = b_sync.board = fresh
    clock.now += HEARTBEAT_S  # nothing new at either: each reports at its heartbeat
    asyncio.run(a.sync())
    asyncio.run(b.sync())
    assert not allowed(b, rpm=3)


def test_a_new_minute_starts_every_count_afresh() -> None:
    clock, board, a, b = pair()
    assert allowed(a, rpm=2) and allowed(b, rpm=2)
    asyncio.run(a.sync())
    asyncio.run(b.sync())
    assert not allowed(b, rpm=2)
    clock.now += 60
    assert allowed(b, rpm=2) and allowed(b, rpm=2)
    asyncio.run(b.sync())  # the board moves to the new minute and drops the old one
    assert board.sync("a", int((clock.now - 60) // 60), {"k": (5, 0)}) == {}  # a late report of the old minute
    assert not allowed(b, rpm=2)


def test_an_idle_replica_makes_no_calls_and_a_busy_one_one_per_tick() -> None:
    clock, board = Clock(), LimitBoard()
    a, calls = replica(board, "a", clock)
    for _ in range(3):
        asyncio.run(a.sync())
    assert calls.calls == 0
    assert allowed(a, rpm=10)
    asyncio.run(a.sync())
    asyncio.run(a.sync())  # nothing new, heartbeat not due
    assert calls.calls == 1
    clock.now += HEARTBEAT_S
    asyncio.run(a.sync())
    assert calls.calls == 2


def test_a_failed_sync_is_sent_again() -> None:
    clock = Clock()
    windows = SharedWindows(clock)
    attempts: list[KeyCounts] = []

    async def failing(window: int, own: KeyCounts) -> KeyCounts:
        attempts.append(own)
        raise ConnectionError("board gone")

    limiter = SyncedRateLimiter(failing, windows, clock=clock)
    assert allowed(limiter, rpm=5)
    with pytest.raises(ConnectionError):
        asyncio.run(limiter.sync())
    assert windows.due(clock.now)  # not taken: due again at the next tick
    assert attempts == [{"k": (1, 0)}]


def test_the_board_answers_for_the_reporters_keys_only() -> None:
    board = LimitBoard()
    board.sync("a", 100, {"k": (3, 30), "j": (1, 0)})
    board.sync("c", 100, {"k": (2, 0)})
    assert board.sync("b", 100, {"k": (1, 0)}) == {"k": (5, 30)}


def test_a_replica_whose_keys_went_quiet_stops_calling() -> None:
    clock, board = Clock(), LimitBoard()
    a, calls = replica(board, "a", clock)
    assert allowed(a, rpm=10)
    asyncio.run(a.sync())
    clock.now += 60  # a new minute, nothing counted in it
    for _ in range(3):
        clock.now += HEARTBEAT_S
        asyncio.run(a.sync())
    assert calls.calls == 1
