"""Where the engine replicas publish their scheduler load, summed per tier.

A Ray Serve handle reaches one replica per call, so polling engines through it can't
see a whole tier. Instead every engine replica reports here (a change within 0.2 s, an
unchanged load every HEARTBEAT_S) and the ingress polls one snapshot: waiting + running
over all live replicas of a tier.

The board takes ~10 calls a second at idle, so it is a plain Ray actor shared by name,
not a Serve deployment (deployments/named_actor.py: what that costs and how it lives and
dies with the application). A board created again after its owner went says nothing for
its first WARM_UP_S, until every live replica has reported: a half-filled board would
mark the tiers it has not heard from yet as down.

A remote tier called straight from the ingress (`openai.direct`) has no replica: each
ingress replica reports its own in-flight count for it, and, where the upstream is a
vLLM whose /metrics it scrapes, the upstream's whole queue. That queue already holds
every replica's requests, so it is not summed: it is a floor under the summed count.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import ray

from background.failures import CountFailure, FailureLog, uncounted
from deployments.named_actor import NamedActor, app_scoped
from engines.types import AdapterReport, EngineLoad, Tier
from router.decision import TierLoad

# Ray Serve forwards the "ray.serve" logger's records to the replica's log.
logger = logging.getLogger("ray.serve")

REPORT_INTERVAL_S = 0.2  # the routing issue asks for a refresh at least every 250 ms
FRESH_FOR_S = 1.0  # a replica silent for longer is stuck or gone: its load is not counted
ALIVE_FOR_S = 5.0  # silent for longer: gone. A tier with no replica left is absent from the
# snapshot, and the gateway fails requests for it fast (a busy replica's publisher can
# pause for a second; five means dead)
REPORT_TIMEOUT_S = FRESH_FOR_S  # a report later than this would not count on the board anyway
# An unchanged report goes again after this, well inside FRESH_FOR_S: an idle replica reports
# ~2.5 times a second instead of 5 (each Ray call costs the board and the replica CPU; at idle
# the reports were most of the gateway's background CPU on 2 cores). A change goes at once.
HEARTBEAT_S = 0.35
# A direct tier's scraped upstream queue is fresh (metrics_stale_s) when it is sent. It
# holds requests the gateway cannot count itself (other clients of the upstream), so the
# board keeps it longer than a replica's own count: on a busy host the ingress's
# publisher thread can lag past a second, and dropping the floor then would blind the
# router to that load (seen in CI). A stale floor overstates the queue for 3 s at most.
UPSTREAM_FRESH_FOR_S = 3.0
# Every live replica reports within HEARTBEAT_S + REPORT_INTERVAL_S; a board younger than
# this has not heard from all of them yet.
WARM_UP_S = FRESH_FOR_S


class LoadBoard:
    """The board's state; runs as the Ray actor BoardClient creates (ray.remote below)."""

    def __init__(self) -> None:
        self._born = time.monotonic()
        self._entries: dict[tuple[str, str], tuple[float, EngineLoad]] = {}
        self._adapters: dict[tuple[str, str], tuple[float, AdapterReport]] = {}
        self._upstream: dict[str, tuple[float, EngineLoad]] = {}

    def report(
        self, tier: str, replica: str, load: EngineLoad, adapters: AdapterReport | None = None,
        upstream: EngineLoad | None = None,
    ) -> None:
        """One replica's load; `upstream` is a scrape of the queue of the endpoint a direct
        remote tier calls (one call for both: each Ray call costs the busy replica)."""
        now = time.monotonic()
        self._entries[(tier, replica)] = (now, load)
        if adapters is not None:
            self._adapters[(tier, replica)] = (now, adapters)
        if upstream is not None:
            self._upstream[tier] = (now, upstream)

    def adapter_reports(self, tier: str) -> dict[str, AdapterReport]:
        """Per live replica of `tier`: the registry generation it applied and what it holds."""
        now = time.monotonic()
        return {
            replica: report
            for (t, replica), (seen, report) in list(self._adapters.items())
            if t == tier and now - seen <= ALIVE_FOR_S
        }

    def snapshot(self) -> dict[str, TierLoad]:
        """Per tier, the summed load of its fresh replicas; empty (says nothing) while warming up."""
        now = time.monotonic()
        if now - self._born < WARM_UP_S:
            return {}
        totals: dict[str, TierLoad] = {}
        for (tier, _), (seen, load) in list(self._entries.items()):
            if now - seen > ALIVE_FOR_S:
                continue
            total = totals.setdefault(tier, TierLoad())
            if now - seen > FRESH_FOR_S:
                continue
            total.running += load.running
            total.waiting += load.waiting
        for tier, (seen, scraped) in list(self._upstream.items()):
            if tier in totals and now - seen <= UPSTREAM_FRESH_FOR_S:
                totals[tier] = _at_least(totals[tier], scraped)
        return totals


def _at_least(counted: TierLoad, scraped: EngineLoad) -> TierLoad:
    """The scraped queue, unless the requests counted in flight are more (a scrape lags)."""
    in_flight = counted.running + counted.waiting
    total = max(scraped.running + scraped.waiting, in_flight)
    if total == in_flight:
        return counted
    running = min(scraped.running, total)
    return TierLoad(running=running, waiting=total - running)


_BoardActor = ray.remote(num_cpus=0)(LoadBoard)


@dataclass(frozen=True)
class BoardAddress:
    """What the application builder hands every replica: the board's name, resolved within
    the replica's own Serve application."""

    name: str = "load-board"

    def connect(self) -> BoardClient:
        return BoardClient(NamedActor(_BoardActor, app_scoped(self.name)))


class BoardClient:
    """The board as its replicas call it (deployments/named_actor.py)."""

    def __init__(self, actor: NamedActor) -> None:
        self._actor = actor

    def report(self, tier: str, replica: str, *report: Any, timeout_s: float) -> None:
        """Blocking: for a publisher's own thread."""
        self._actor.call_blocking("report", tier, replica, *report, timeout_s=timeout_s)

    async def snapshot(self) -> Mapping[Tier, TierLoad]:
        return await self._actor.call("snapshot")  # type: ignore[no-any-return]

    async def adapter_reports(self, tier: str) -> Mapping[str, AdapterReport]:
        return await self._actor.call("adapter_reports", tier)  # type: ignore[no-any-return]


Report = tuple[EngineLoad, AdapterReport | None, EngineLoad | None]  # load, adapters, upstream


class LoadPublisher:
    """Daemon thread in an engine replica: reports its load to the board.

    Each report is waited for (up to REPORT_TIMEOUT_S): a board that fails or hangs is
    counted as task "load-report" and logged (first failure, then once a minute), and
    a hung board gets one call at a time instead of a growing pile of them.
    """

    def __init__(
        self,
        board: BoardClient,
        tier: str,
        replica: str,
        read: Callable[[], EngineLoad],
        adapters: Callable[[], AdapterReport | None] = lambda: None,
        count_failure: CountFailure = uncounted,
        upstream: Callable[[], EngineLoad | None] = lambda: None,
    ) -> None:
        self._board, self._tier, self._replica, self._read = board, tier, replica, read
        self._adapters, self._upstream = adapters, upstream
        self.failures = FailureLog("load-report", logger, count_failure)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"load-publisher-{tier}", daemon=True)
        self._last: Report | None = None  # the last report the board took, and when
        self._sent_at = float("-inf")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        wait = REPORT_INTERVAL_S
        while not self._stop.wait(wait):
            started = time.monotonic()
            self.publish_if_due(started)
            wait = max(0.0, REPORT_INTERVAL_S - (time.monotonic() - started))

    def publish_if_due(self, now: float) -> None:
        """This tick's report, unless the board already took the same one less than
        HEARTBEAT_S ago. A failed report is not taken: it goes again next tick."""
        report = self._report()
        if report == self._last and now - self._sent_at < HEARTBEAT_S:
            return
        if self._send(report):
            self._last, self._sent_at = report, now

    def _report(self) -> Report:
        return self._read(), self._adapters(), self._upstream()

    def _send(self, report: Report) -> bool:
        try:
            # This thread is not the replica's event loop: a blocking wait is allowed here.
            self._board.report(self._tier, self._replica, *report, timeout_s=REPORT_TIMEOUT_S)
        except Exception as exc:  # the board restarting must not take the engine down
            self.failures.failed(exc)
            return False
        self.failures.succeeded()
        return True
