"""Per-key rate limits shared by several ingress replicas, admitted locally.

Each replica admits against its own counts of the current minute plus the other replicas'
counts as of its last sync, and syncs in the background (`SyncedRateLimiter.sync`, a
periodic step): no request waits on a remote call. What a replica reports is its whole
count for the minute, not a delta, so a board that restarts is refilled by the next round
of syncs instead of forgetting the minute.

The price is bounded over-admission: a replica's view of the others' counts is as old as
its last sync, one tick (SYNC_INTERVAL_S, 0.2 s) while it admits the key, at most a
heartbeat (1 s) after a pause, and nothing for a key it has not counted yet this minute.
So over a minute a key may get up to what the other replicas admitted in the last ~1.2 s
beyond its limit. With one ingress replica (the default) the count is exact. A board that is down leaves each replica
enforcing its own count (per-replica limits) until it is back.

Windows are wall-clock minutes (`time.time`), not monotonic ones: replicas on different
nodes must agree which minute it is.
"""

from __future__ import annotations

import time
from typing import Callable, Mapping, Protocol

from gateway.auth import WINDOW_S, Admission

Counts = tuple[int, int]  # requests, tokens within one window
KeyCounts = Mapping[str, Counts]

# A replica that counted something since its last sync syncs at the next tick; one that
# did not still hears the others this often while its minute holds any count.
HEARTBEAT_S = 1.0
SYNC_INTERVAL_S = 0.2  # the tick: a key's rate x this is what another replica may over-admit


class LimitSync(Protocol):
    async def __call__(self, window: int, own: KeyCounts) -> KeyCounts:
        """Reports this replica's counts for `window`; returns the other replicas' summed
        counts of the same keys (empty for a window the board has moved past)."""
        ...


class SharedWindows:
    """This replica's counts of the current minute and the others' last known ones (pure,
    clock injected; used on one event loop)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._window = self._now_window()
        self._own: dict[str, Counts] = {}
        self._others: dict[str, Counts] = {}
        self._changed = False  # counted since the last report
        self._reported_at = float("-inf")

    def _now_window(self) -> int:
        return int(self._clock() // WINDOW_S)

    def _roll(self) -> int:
        window = self._now_window()
        if window != self._window:
            self._window, self._own, self._others = window, {}, {}
        return window

    def admit(self, key: str, rpm: int | None, tpm: int | None) -> Admission:
        window = self._roll()
        own, others = self._own.get(key, (0, 0)), self._others.get(key, (0, 0))
        requests, tokens = own[0] + others[0], own[1] + others[1]
        retry = (window + 1) * WINDOW_S - self._clock()
        if rpm is not None and requests >= rpm:
            return Admission(allowed=False, retry_after_s=retry, limit="requests")
        if tpm is not None and tokens >= tpm:
            return Admission(allowed=False, retry_after_s=retry, limit="tokens")
        self._own[key] = (own[0] + 1, own[1])
        self._changed = True
        return Admission(allowed=True)

    def charge(self, key: str, tokens: int) -> None:
        self._roll()
        requests, used = self._own.get(key, (0, 0))
        self._own[key] = (requests, used + tokens)
        self._changed = True

    def due(self, now: float) -> bool:
        """Whether a sync is worth a call now: counts changed, or a heartbeat is due while
        this replica counts any key this minute (the board answers for those keys only). A
        replica with no limited traffic makes no calls; the first request of a key it has
        not counted this minute is admitted on its own count, the next tick brings the
        others'."""
        self._roll()
        return self._changed or (bool(self._own) and now - self._reported_at >= HEARTBEAT_S)

    def report(self, now: float) -> tuple[int, dict[str, Counts]]:
        """This replica's counts for its current window, to send."""
        window = self._roll()
        self._changed, self._reported_at = False, now
        return window, dict(self._own)

    def unreported(self) -> None:
        """The last report did not reach the board: it goes again at the next tick."""
        self._changed = True

    def learn(self, window: int, others: KeyCounts) -> None:
        """The other replicas' counts for `window`; ignored once this replica has moved on."""
        if window == self._window:
            self._others = dict(others)


class SyncedRateLimiter:
    """`gateway.auth.RateLimiter` over `SharedWindows`; `sync` is the background step."""

    def __init__(self, board: LimitSync, windows: SharedWindows | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._board = board
        self._windows = windows or SharedWindows()
        self._clock = clock

    async def admit(self, key: str, rpm: int | None, tpm: int | None) -> Admission:
        return self._windows.admit(key, rpm, tpm)

    async def charge(self, key: str, tokens: int) -> None:
        self._windows.charge(key, tokens)

    async def sync(self) -> None:
        now = self._clock()
        if not self._windows.due(now):
            return
        window, own = self._windows.report(now)
        try:
            others = await self._board(window, own)
        except Exception:
            self._windows.unreported()
            raise
        self._windows.learn(window, others)
