"""Requests in flight: a cap per ingress replica and per key, each slot released when its
request ends.

A request's slots are held by its `Lease`, which `InFlightMiddleware` opens around the whole
ASGI call and releases when that call returns or is cancelled: after a stream's last byte,
when the client goes away (Ray Serve cancels the call), or on any error. A slot is never
tied to a code path that a cut stream could skip.
"""

from __future__ import annotations

from typing import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import RateLimited

LEASE = "gateway.lease"  # where a request's lease lies in its ASGI scope's state
RETRY_AFTER_S = 1.0


class Lease:
    """What one request holds; each release runs once, when the request ends."""

    def __init__(self) -> None:
        self._releases: list[Callable[[], None]] = []

    def hold(self, release: Callable[[], None]) -> None:
        self._releases.append(release)

    def release(self) -> None:
        while self._releases:
            self._releases.pop()()


class InFlight:
    """Requests in flight per name (a key's id); a name is dropped at zero, so the map is
    never larger than the requests in flight."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def enter(self, name: str, cap: int) -> bool:
        held = self._counts.get(name, 0)
        if held >= cap:
            return False
        self._counts[name] = held + 1
        return True

    def leave(self, name: str) -> None:
        held = self._counts.get(name, 0) - 1
        if held > 0:
            self._counts[name] = held
        else:
            self._counts.pop(name, None)

    def count(self, name: str) -> int:
        return self._counts.get(name, 0)


def lease_of(scope: Scope) -> Lease | None:
    return scope.get("state", {}).get(LEASE)


def concurrency_limited(message: str) -> RateLimited:
    return RateLimited(message, retry_after_s=RETRY_AFTER_S, code="concurrency_limit")


class InFlightMiddleware:
    """Opens every HTTP request's lease; under `prefix`, holds one of the replica's
    `cap()` slots too (read per request: the live `limits` replace it). Over the cap: 429
    before anything else runs."""

    GLOBAL = "*"

    def __init__(self, app: ASGIApp, cap: Callable[[], int], prefix: str = "/v1/") -> None:
        self.app = app
        self._cap = cap
        self._prefix = prefix
        self.in_flight = InFlight()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lease = Lease()
        scope.setdefault("state", {})[LEASE] = lease
        try:
            if scope["path"].startswith(self._prefix):
                cap = self._cap()
                if not self.in_flight.enter(self.GLOBAL, cap):
                    await _refuse(concurrency_limited(
                        f"The gateway is serving its limit of {cap} requests at once; retry shortly."
                    ), scope, receive, send)
                    return
                lease.hold(lambda: self.in_flight.leave(self.GLOBAL))
            await self.app(scope, receive, send)
        finally:
            lease.release()


async def _refuse(error: RateLimited, scope: Scope, receive: Receive, send: Send) -> None:
    await JSONResponse(error.body(), status_code=error.status, headers=error.headers())(scope, receive, send)
