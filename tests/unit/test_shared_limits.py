"""Rate limits shared by ingress replicas: requests admitted from leases of a key's rpm,
tokens against counts synced in the background (gateway/shared_limits.py), over the
board's state (deployments/limit_board.py, its plain class: the Ray actor is this class)."""

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


class BoardCalls:
    """`LimitBoardCalls` for one replica over an in-process board (swappable: a board
    created again), counting the calls."""

    def __init__(self, board: LimitBoard, replica: str) -> None:
        self.board, self.replica = board, replica
        self.syncs = self.leases = 0

    async def sync(self, window: int, own: KeyCounts) -> KeyCounts:
        self.syncs += 1
        return self.board.sync(self.replica, window, own)

    async def lease(self, window: int, key: str, rpm: int, want: int) -> int:
        self.leases += 1
        return self.board.lease(window, key, rpm, want)


def replica(board: LimitBoard, name: str, clock: Clock) -> tuple[SyncedRateLimiter, BoardCalls]:
    calls = BoardCalls(board, name)
    return SyncedRateLimiter(calls, SharedWindows(clock), clock=clock), calls


def pair() -> tuple[Clock, LimitBoard, SyncedRateLimiter, SyncedRateLimiter]:
    """Two ingress replicas over one board."""
    clock, board = Clock(), LimitBoard()
    return clock, board, replica(board, "a", clock)[0], replica(board, "b", clock)[0]


def allowed(limiter: SyncedRateLimiter, rpm: int | None = None, tpm: int | None = None) -> bool:
    return asyncio.run(limiter.admit("k", rpm, tpm)).allowed


def test_two_replicas_admit_exactly_the_rpm_without_any_sync() -> None:
    clock, board, a, b = pair()
    assert allowed(a, rpm=3) and allowed(a, rpm=3) and allowed(b, rpm=3)
    assert not allowed(b, rpm=3) and not allowed(a, rpm=3)
    refused = asyncio.run(b.admit("k", 3, None))
    assert refused.limit == "requests" and 0 < refused.retry_after_s <= 60


def test_a_burst_over_both_replicas_gets_the_rpm_and_no_more() -> None:
    """The fault drill's shape: 36 at once on a 12-a-minute key, half at each replica."""
    clock, board, a, b = pair()

    async def burst() -> list[bool]:
        answers = await asyncio.gather(*(r.admit("k", 12, None) for r in [a, b] * 18))
        return [answer.allowed for answer in answers]

    assert sum(asyncio.run(burst())) == 12


def test_leases_spare_the_board_a_call_per_request() -> None:
    clock, board = Clock(), LimitBoard()
    a, calls = replica(board, "a", clock)
    assert all(allowed(a, rpm=1_000) for _ in range(200))
    assert calls.leases <= 3  # 100, then 90, ... of the budget left
    assert sum(allowed(a, rpm=1_000) for _ in range(900)) == 800  # the whole minute, exactly


def test_tokens_charged_at_one_replica_refuse_at_another_after_a_sync() -> None:
    clock, board, a, b = pair()
    assert allowed(a, tpm=100)
    asyncio.run(a.charge("k", 100))
    asyncio.run(a.sync())
    assert allowed(b, tpm=100)  # b's first: on its own count, the others' come with its sync
    asyncio.run(b.sync())
    admission = asyncio.run(b.admit("k", None, 100))
    assert not admission.allowed and admission.limit == "tokens"


def test_a_board_created_again_learns_what_was_admitted_from_the_syncs() -> None:
    clock = Clock()
    a, a_calls = replica(LimitBoard(), "a", clock)
    b, b_calls = replica(a_calls.board, "b", clock)
    assert allowed(a, rpm=3) and allowed(a, rpm=3) and allowed(b, rpm=3)
    asyncio.run(a.sync())
    asyncio.run(b.sync())
    fresh = LimitBoard()  # the owner replica went; the next call creates the board again
    a_calls.board = b_calls.board = fresh
    clock.now += HEARTBEAT_S  # nothing new at either: each reports at its heartbeat
    asyncio.run(a.sync())
    asyncio.run(b.sync())
    assert not allowed(b, rpm=3) and not allowed(a, rpm=3)


def test_a_new_minute_starts_every_count_and_lease_afresh() -> None:
    clock, board, a, b = pair()
    assert allowed(a, rpm=2) and allowed(b, rpm=2)
    assert not allowed(b, rpm=2)
    clock.now += 60
    assert allowed(b, rpm=2) and allowed(a, rpm=2)
    assert not allowed(a, rpm=2)
    assert board.sync("a", int((clock.now - 60) // 60), {"k": (5, 0)}) == {}  # a late report of the old minute


def test_a_replica_reaches_the_board_once_at_start_then_calls_only_with_counts() -> None:
    """The first tick creates the board (a Ray actor takes seconds to start) before a key
    needs a lease; after that an idle replica makes no calls, and a quiet one stops."""
    clock, board = Clock(), LimitBoard()
    a, calls = replica(board, "a", clock)
    for _ in range(3):
        asyncio.run(a.sync())
    assert calls.syncs == 1
    assert allowed(a, tpm=10_000)
    asyncio.run(a.sync())
    asyncio.run(a.sync())  # nothing new, heartbeat not due
    clock.now += HEARTBEAT_S
    asyncio.run(a.sync())
    assert calls.syncs == 3
    clock.now += 60  # a new minute, nothing counted in it
    for _ in range(3):
        clock.now += HEARTBEAT_S
        asyncio.run(a.sync())
    assert calls.syncs == 3


def test_a_failed_sync_is_sent_again() -> None:
    clock = Clock()
    windows = SharedWindows(clock)

    class Failing(BoardCalls):
        async def sync(self, window: int, own: KeyCounts) -> KeyCounts:
            raise ConnectionError("board gone")

    limiter = SyncedRateLimiter(Failing(LimitBoard(), "a"), windows, clock=clock)
    assert allowed(limiter, tpm=5)
    with pytest.raises(ConnectionError):
        asyncio.run(limiter.sync())
    assert windows.due(clock.now)  # not taken: due again at the next tick


def test_without_the_board_a_replica_enforces_the_limits_on_its_own_counts() -> None:
    clock, failures = Clock(), []

    class Down(BoardCalls):
        async def lease(self, window: int, key: str, rpm: int, want: int) -> int:
            raise ConnectionError("board gone")

    limiter = SyncedRateLimiter(Down(LimitBoard(), "a"), SharedWindows(clock), clock=clock,
                                count_failure=failures.append)
    assert allowed(limiter, rpm=2) and allowed(limiter, rpm=2)
    assert not allowed(limiter, rpm=2)
    assert failures == ["rate-limit-lease"] * 3


def test_the_board_answers_for_the_reporters_keys_only() -> None:
    board = LimitBoard()
    board.sync("a", 100, {"k": (3, 30), "j": (1, 0)})
    board.sync("c", 100, {"k": (2, 0)})
    assert board.sync("b", 100, {"k": (1, 0)}) == {"k": (5, 30)}


def test_a_lease_granted_after_its_request_stopped_waiting_is_kept(monkeypatch) -> None:
    """The board granted it, so it counts against the key's rpm: losing it would leave that
    part of the minute unused everywhere."""
    monkeypatch.setattr("gateway.shared_limits.LEASE_TIMEOUT_S", 0.05)
    clock, board = Clock(), LimitBoard()

    class Slow(BoardCalls):
        async def lease(self, window: int, key: str, rpm: int, want: int) -> int:
            await asyncio.sleep(0.2)
            return await super().lease(window, key, rpm, want)

    calls = Slow(board, "a")
    limiter = SyncedRateLimiter(calls, SharedWindows(clock), clock=clock, count_failure=lambda task: None)

    async def scenario() -> list[bool]:
        first = await limiter.admit("k", 100, None)  # waits 0.05 s, admitted on local counts
        await asyncio.sleep(0.3)  # the board's lease of 10 arrives meanwhile
        rest = [await limiter.admit("k", 100, None) for _ in range(10)]
        return [first.allowed] + [answer.allowed for answer in rest]

    assert all(asyncio.run(scenario()))
    assert calls.leases == 1  # the ten after it came from the late lease
