"""Per-key rate limits shared by several ingress replicas, admitted locally.

Requests per minute are exact across replicas without a remote call per request: a replica
admits from a lease of the key's budget that the app's limit board grants it (a tenth of
what is left, one at a time near the end), and asks for the next lease when it runs out.
The board never grants more than the key's rpm in a minute, so N replicas admit what one
would. A lease a replica does not use is not used elsewhere that minute: at most a tenth of
the budget per replica. A lease granted after its request stopped waiting (LEASE_TIMEOUT_S) is
kept for the key's next requests.

Tokens are counted after a request (its usage is known only then), so tokens per minute are
checked against this replica's count plus the others' as of its last sync: each replica
syncs its counts in the background (`SyncedRateLimiter.sync`, every 0.2 s while it counts,
1 s while its keys are quiet, no call when it has none this minute); a key may run over its
tpm by what the others used since. What a replica syncs is its whole count for the minute,
not a delta, so a board created again (its owner replica went) is refilled by the next
round of syncs, its grants included.

A board that cannot be reached leaves each replica enforcing the limits on its own counts
(per-replica limits), counted as failures of task "rate-limit-lease", until it is back.

Windows are wall-clock minutes (`time.time`), not monotonic ones: replicas on different
nodes must agree which minute it is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, Mapping, Protocol

from background.failures import CountFailure, FailureLog, uncounted
from gateway.auth import WINDOW_S, Admission

logger = logging.getLogger(__name__)

Counts = tuple[int, int]  # requests, tokens within one window
KeyCounts = Mapping[str, Counts]

# A replica that counted something since its last sync syncs at the next tick; one that
# did not still hears the others this often while its minute holds any count.
HEARTBEAT_S = 1.0
SYNC_INTERVAL_S = 0.2  # the tick: what a key may run over its tpm is what the others use in it
LEASE_PARTS = 10  # a lease is this fraction of the key's budget left (at least one request)
LEASE_TIMEOUT_S = 1.0  # a board slower than this: the request is admitted on local counts


class LimitBoardCalls(Protocol):
    """The limit board as one replica calls it (deployments/limit_board.py)."""

    async def sync(self, window: int, own: KeyCounts) -> KeyCounts:
        """Reports this replica's counts for `window`; returns the other replicas' summed
        counts of the same keys (empty for a window the board has moved past)."""
        ...

    async def lease(self, window: int, key: str, rpm: int, want: int) -> int:
        """Up to `want` more requests of `key` this replica may admit in `window` (0: the
        key's rpm is spent)."""
        ...


class SharedWindows:
    """This replica's counts of the current minute, its leases, and the others' last known
    counts (pure, clock injected; used on one event loop)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._window = self._now_window()
        self._own: dict[str, Counts] = {}
        self._others: dict[str, Counts] = {}
        self._leases: dict[str, int] = {}  # requests each key may still admit here this window
        self._changed = False  # counted since the last report
        self._reported_at = float("-inf")

    def _now_window(self) -> int:
        return int(self._clock() // WINDOW_S)

    def roll(self) -> int:
        """The current window (a new minute starts every count and lease afresh)."""
        window = self._now_window()
        if window != self._window:
            self._window, self._own, self._others, self._leases = window, {}, {}, {}
        return window

    def admit(self, key: str, rpm: int | None, tpm: int | None) -> Admission | None:
        """Admitted or refused here, or None: the key's lease is spent, ask the board."""
        self.roll()
        if tpm is not None and self._known(key)[1] >= tpm:
            return self._refused("tokens")
        if rpm is not None:
            if self._leases.get(key, 0) <= 0:
                return None
            self._leases[key] -= 1
        return self._counted(key)

    def lease_size(self, key: str, rpm: int) -> int:
        """What to ask the board for: a tenth of the budget not known to be used."""
        return max(1, (rpm - self._known(key)[0]) // LEASE_PARTS)

    def granted(self, window: int, key: str, requests: int) -> Admission:
        """The board's lease for `key` (asked for in `window`): this request takes one."""
        if requests <= 0:
            return self._refused("requests")
        if self.roll() == window:  # a lease of a minute that has ended is not carried over
            self._leases[key] = self._leases.get(key, 0) + requests - 1
        return self._counted(key)

    def late(self, window: int, key: str, requests: int) -> None:
        """A lease the board granted after its request stopped waiting (and was admitted on
        local counts): kept for the key's next requests this minute, not lost."""
        if requests > 0 and self.roll() == window:
            self._leases[key] = self._leases.get(key, 0) + requests

    def admit_locally(self, key: str, rpm: int | None, tpm: int | None) -> Admission:
        """Without the board: the limits on this replica's own and last known counts."""
        self.roll()
        requests, tokens = self._known(key)
        if rpm is not None and requests >= rpm:
            return self._refused("requests")
        if tpm is not None and tokens >= tpm:
            return self._refused("tokens")
        return self._counted(key)

    def charge(self, key: str, tokens: int) -> None:
        self.roll()
        requests, used = self._own.get(key, (0, 0))
        self._own[key] = (requests, used + tokens)
        self._changed = True

    def _known(self, key: str) -> Counts:
        own, others = self._own.get(key, (0, 0)), self._others.get(key, (0, 0))
        return own[0] + others[0], own[1] + others[1]

    def _counted(self, key: str) -> Admission:
        requests, tokens = self._own.get(key, (0, 0))
        self._own[key] = (requests + 1, tokens)
        self._changed = True
        return Admission(allowed=True)

    def _refused(self, limit: str) -> Admission:
        return Admission(allowed=False, retry_after_s=(self._window + 1) * WINDOW_S - self._clock(), limit=limit)

    def due(self, now: float) -> bool:
        """Whether a sync is worth a call now: counts changed, or a heartbeat is due while
        this replica counts any key this minute (the board answers for those keys only). A
        replica with no limited traffic makes no calls."""
        self.roll()
        return self._changed or (bool(self._own) and now - self._reported_at >= HEARTBEAT_S)

    def report(self, now: float) -> tuple[int, dict[str, Counts]]:
        """This replica's counts for its current window, to send."""
        window = self.roll()
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
    """`gateway.auth.RateLimiter` over `SharedWindows` and the board: leases for requests,
    `sync` (the background step) for tokens."""

    def __init__(
        self, board: LimitBoardCalls, windows: SharedWindows | None = None,
        clock: Callable[[], float] = time.monotonic, count_failure: CountFailure = uncounted,
    ) -> None:
        self._board = board
        self._windows = windows or SharedWindows()
        self._clock = clock
        self._lease_failures = FailureLog("rate-limit-lease", logger, count_failure)
        # The board is a Ray actor its first caller creates, which takes seconds: the first
        # tick reaches it, so a key's first lease does not wait for that (and time out).
        self._reached = False

    async def admit(self, key: str, rpm: int | None, tpm: int | None) -> Admission:
        admission = self._windows.admit(key, rpm, tpm)
        if admission is not None:
            return admission
        assert rpm is not None  # only a key with an rpm needs a lease
        window = self._windows.roll()
        call = asyncio.ensure_future(self._board.lease(window, key, rpm, self._windows.lease_size(key, rpm)))
        try:
            # Shielded: a slow board may still grant the lease, and what it granted counts
            # against the key's rpm, so the answer is kept when it comes (see `_late`).
            granted = await asyncio.wait_for(asyncio.shield(call), LEASE_TIMEOUT_S)
        except Exception as exc:  # the board is down or slow: serve on this replica's counts
            call.add_done_callback(lambda done: self._late(window, key, done))
            self._lease_failures.failed(exc)
            return self._windows.admit_locally(key, rpm, tpm)
        self._lease_failures.succeeded()
        return self._windows.granted(window, key, granted)

    def _late(self, window: int, key: str, call: asyncio.Future[int]) -> None:
        if not call.cancelled() and call.exception() is None:
            self._windows.late(window, key, call.result())

    async def charge(self, key: str, tokens: int) -> None:
        self._windows.charge(key, tokens)

    async def sync(self) -> None:
        now = self._clock()
        if self._reached and not self._windows.due(now):
            return
        window, own = self._windows.report(now)
        try:
            others = await self._board.sync(window, own)
        except Exception:
            self._windows.unreported()
            raise
        self._reached = True
        self._windows.learn(window, others)
