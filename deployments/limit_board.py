"""Per-key rate-limit counts shared by every ingress replica.

Each ingress replica admits keyed requests against its own counts plus the others' as of
its last sync, and syncs here in the background (gateway/shared_limits.py): N gateway
replicas enforce one budget per key rather than N, and no request waits on a call. Each
sync carries the replica's whole count for the minute, so a board created again (its
owner replica went) is refilled by the next round of syncs: the minute is not forgotten.

A plain Ray actor shared by name, like the load board (deployments/named_actor.py): a
Serve handle call per keyed request cost ~2.7 ms of CPU on each side on 2 cores.
"""

from __future__ import annotations

from dataclasses import dataclass

import ray

from deployments.named_actor import NamedActor, app_scoped
from gateway.shared_limits import Counts, KeyCounts


class LimitBoard:
    """The board's state: each replica's counts of one window (the latest any replica
    reported); runs as the Ray actor LimitBoardClient creates (ray.remote below)."""

    def __init__(self) -> None:
        self._window = -1
        self._counts: dict[str, dict[str, Counts]] = {}  # replica -> key -> counts

    def sync(self, replica: str, window: int, own: KeyCounts) -> dict[str, Counts]:
        """Takes `replica`'s counts for `window`; returns the other replicas' summed counts
        of the keys it reported (its answer grows with the replica's own keys, not with
        every key of the minute). A newer window starts the board afresh (bounded: one
        minute of keys); a report for an older one is not kept and learns nothing."""
        if window > self._window:
            self._window, self._counts = window, {}
        if window < self._window:
            return {}
        self._counts[replica] = dict(own)
        others: dict[str, Counts] = {}
        for name, counts in self._counts.items():
            if name == replica:
                continue
            for key in own.keys() & counts.keys():
                requests, tokens = counts[key]
                seen = others.get(key, (0, 0))
                others[key] = (seen[0] + requests, seen[1] + tokens)
        return others


_BoardActor = ray.remote(num_cpus=0)(LimitBoard)


@dataclass(frozen=True)
class LimitBoardAddress:
    """What the application builder hands the ingress: the board's name, resolved within
    the replica's own Serve application."""

    name: str = "limit-board"

    def connect(self, replica: str) -> LimitBoardClient:
        return LimitBoardClient(NamedActor(_BoardActor, app_scoped(self.name)), replica)


class LimitBoardClient:
    """`gateway.shared_limits.LimitSync` for one ingress replica."""

    def __init__(self, actor: NamedActor, replica: str) -> None:
        self._actor, self._replica = actor, replica

    async def __call__(self, window: int, own: KeyCounts) -> KeyCounts:
        return await self._actor.call("sync", self._replica, window, dict(own))  # type: ignore[no-any-return]
