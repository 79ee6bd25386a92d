"""The queue of a vLLM server behind a remote tier, scraped from its Prometheus /metrics.

A scrape is kept until it is `stale_after_s` old; a failing or stale one leaves the
tier's load to the engine's own in-flight count, so a metrics outage never blinds the
router and never pins an old queue depth.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Protocol

import httpx

from engines.types import EngineLoad

WAITING = "vllm:num_requests_waiting"
RUNNING = "vllm:num_requests_running"


class FailureSink(Protocol):
    """Where failed scrapes go (the replica's failure log: counted, logged once a minute)."""

    def failed(self, exc: BaseException) -> None: ...

    def succeeded(self) -> None: ...


class _Unlogged:
    def failed(self, exc: BaseException) -> None:
        pass

    def succeeded(self) -> None:
        pass


def parse_vllm_load(text: str) -> EngineLoad:
    """Running and waiting requests, each summed over its label sets (a server holds one
    per engine and model). Raises ValueError when neither gauge is there."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        name, value = _sample(line)
        if name in (WAITING, RUNNING):
            totals[name] = totals.get(name, 0.0) + value
    if not totals:
        raise ValueError(f"no {RUNNING} or {WAITING} in the scraped metrics: is the upstream vLLM?")
    return EngineLoad(running=round(totals.get(RUNNING, 0.0)), waiting=round(totals.get(WAITING, 0.0)))


def _sample(line: str) -> tuple[str, float]:
    """One exposition line's metric name and value ("", 0 for comments and blanks)."""
    line = line.strip()
    if not line or line.startswith("#"):
        return "", 0.0
    if "{" in line:
        name, rest = line.split("{", 1)[0], line[line.rindex("}") + 1:]
    else:
        name, _, rest = line.partition(" ")
    return name.strip(), float(rest.split()[0])


class UpstreamLoad:
    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        interval_s: float,
        stale_after_s: float,
        failures: FailureSink | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client, self._url = client, url
        self._interval_s, self._stale_after_s = interval_s, stale_after_s
        self._failures = failures or _Unlogged()
        self._clock = clock
        self._latest: EngineLoad | None = None
        self._scraped_at = 0.0

    def latest(self) -> EngineLoad | None:
        """The last scrape, or None when there is none younger than `stale_after_s`."""
        if self._latest is None or self._clock() - self._scraped_at > self._stale_after_s:
            return None
        return self._latest

    async def refresh(self) -> None:
        try:
            # No API key here: the metrics URL may be another host than the API's.
            response = await self._client.get(self._url, timeout=self._stale_after_s)
            response.raise_for_status()
            load = parse_vllm_load(response.text)
        except (httpx.HTTPError, ValueError, IndexError) as exc:
            self._failures.failed(exc)
            return
        self._latest, self._scraped_at = load, self._clock()
        self._failures.succeeded()

    async def run(self) -> None:
        """Scrape every `interval_s` for the replica's lifetime."""
        while True:
            await self.refresh()
            await asyncio.sleep(self._interval_s)
