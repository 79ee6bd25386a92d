"""Per-key rate-limit counts shared by every ingress replica.

Each ingress replica admits a key's requests from leases of its rpm granted here, and
syncs its request and token counts here in the background (gateway/shared_limits.py): N
gateway replicas enforce one budget per key rather than N, and a request waits on a call
only when its replica's lease runs out. Each sync carries the replica's whole count for
the minute, so a board created again (its owner replica went) is refilled by the next
round of syncs: the minute is not forgotten.

A plain Ray actor shared by name, like the load board (deployments/named_actor.py): a
Serve handle call per keyed request cost ~2.7 ms of CPU on each side on 2 cores.
"""

from __future__ import annotations

from dataclasses import dataclass

import ray

from deployments.named_actor import NamedActor, app_scoped
from gateway.shared_limits import Counts, KeyCounts


class LimitBoard:
    """The board's state for one window (the latest any replica asked about): the requests
    granted per key, and each replica's counts; runs as the Ray actor LimitBoardClient
    creates (ray.remote below)."""

    def __init__(self) -> None:
        self._window = -1
        self._granted: dict[str, int] = {}  # key -> requests leased this window, all replicas
        self._counts: dict[str, dict[str, Counts]] = {}  # replica -> key -> counts

    def _at(self, window: int) -> bool:
        """Moves to `window` if it is newer; whether `window` is the board's current one."""
        if window > self._window:
            self._window, self._granted, self._counts = window, {}, {}
        return window == self._window

    def lease(self, window: int, key: str, rpm: int, want: int) -> int:
        """Up to `want` requests of `key`, never past `rpm` granted in the minute. A replica
        whose clock still reads the minute before is leased from the current one."""
        self._at(window)
        granted = self._granted.get(key, 0)
        lease = max(0, min(want, rpm - granted))
        self._granted[key] = granted + lease
        return lease

    def sync(self, replica: str, window: int, own: KeyCounts) -> dict[str, Counts]:
        """Takes `replica`'s counts for `window`; returns the other replicas' summed counts
        of the keys it reported (its answer grows with the replica's own keys, not with
        every key of the minute). A report for an older window is not kept and learns
        nothing. What the replicas admitted is a floor under what was granted: a board
        created again mid-minute learns it here."""
        if not self._at(window):
            return {}
        self._counts[replica] = dict(own)
        totals: dict[str, Counts] = {}
        for counts in self._counts.values():
            for key in own.keys() & counts.keys():
                seen, add = totals.get(key, (0, 0)), counts[key]
                totals[key] = (seen[0] + add[0], seen[1] + add[1])
        for key, (requests, _) in totals.items():
            self._granted[key] = max(self._granted.get(key, 0), requests)
        return {key: (requests - own[key][0], tokens - own[key][1]) for key, (requests, tokens) in totals.items()}


_BoardActor = ray.remote(num_cpus=0)(LimitBoard)


@dataclass(frozen=True)
class LimitBoardAddress:
    """What the application builder hands the ingress: the board's name, resolved within
    the replica's own Serve application."""

    name: str = "limit-board"

    def connect(self, replica: str) -> LimitBoardClient:
        return LimitBoardClient(NamedActor(_BoardActor, app_scoped(self.name)), replica)


class LimitBoardClient:
    """`gateway.shared_limits.LimitBoardCalls` for one ingress replica."""

    def __init__(self, actor: NamedActor, replica: str) -> None:
        self._actor, self._replica = actor, replica

    async def sync(self, window: int, own: KeyCounts) -> KeyCounts:
        return await self._actor.call("sync", self._replica, window, dict(own))  # type: ignore[no-any-return]

    async def lease(self, window: int, key: str, rpm: int, want: int) -> int:
        return await self._actor.call("lease", window, key, rpm, want)  # type: ignore[no-any-return]
