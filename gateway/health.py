"""Readiness: every tier's engine answers its load probe in time. Anyone reads the status;
the report (each tier's load, a probe's error) is for observers (`gateway.observers`)."""

from __future__ import annotations

import asyncio
from typing import Mapping

from pydantic import BaseModel

from engines.protocol import Engine
from engines.types import EngineLoad, Tier

PROBE_TIMEOUT_S = 2.0


class TierStatus(BaseModel):
    ready: bool
    load: EngineLoad | None = None
    error: str | None = None


class ReadinessReport(BaseModel):
    ready: bool
    tiers: dict[str, TierStatus]

    def summary(self) -> dict[str, str]:
        """What anyone may read: ready or not, no detail."""
        return {"status": "ready" if self.ready else "not ready"}


class Readiness:
    def __init__(self, engines: Mapping[Tier, Engine], timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self._engines = dict(engines)
        self._timeout_s = timeout_s

    async def check(self) -> ReadinessReport:
        names = list(self._engines)
        statuses = await asyncio.gather(*(self._probe(self._engines[n]) for n in names))
        tiers = dict(zip(names, statuses))
        return ReadinessReport(ready=all(s.ready for s in statuses), tiers=tiers)

    async def _probe(self, engine: Engine) -> TierStatus:
        try:
            load = await asyncio.wait_for(engine.load(), self._timeout_s)
        except Exception as exc:  # any failure means "not ready"; the reason is reported
            return TierStatus(ready=False, error=f"{type(exc).__name__}: {exc}"[:200])
        return TierStatus(ready=True, load=load)
