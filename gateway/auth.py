"""Who is calling, and may they: API keys (Bearer) and per-key rate limits.

With no active key in the store the gateway runs open (the embedded default on
loopback says so at start-up). Once a key exists, every /v1 call needs one.
Limits are requests and tokens per minute per key; the counters live behind the
`RateLimiter` seam: one in-process implementation (tests, a single ingress) and a
shared one (`deployments.limit_board`, a Ray Serve deployment every ingress replica
asks), so several gateway replicas enforce one budget.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Protocol

from cachetools import TTLCache
from pydantic import BaseModel
from starlette.requests import Request

from gateway.errors import AuthenticationError, RateLimited
from gateway.keys import KeyRecord, KeyStore, hash_key

WINDOW_S = 60.0
# Unknown keys are remembered only so a client retrying a stale key does not hit the
# store per request; a flood of random keys just cycles through this many slots.
UNKNOWN_KEYS_CACHED = 1_000


class Admission(BaseModel):
    """A rate limiter's answer for one request: admitted, or which limit it hit and when to retry."""

    allowed: bool
    retry_after_s: float = 0.0
    limit: str | None = None  # "requests" | "tokens"


class MinuteWindows:
    """Fixed one-minute windows of requests and tokens per key (pure, clock injected)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[int, int, int]] = {}  # key -> (window, requests, tokens)

    def _current(self, key: str) -> tuple[int, int, int]:
        window = int(self._clock() // WINDOW_S)
        start, requests, tokens = self._windows.get(key, (window, 0, 0))
        return (window, 0, 0) if start != window else (start, requests, tokens)

    def admit(self, key: str, rpm: int | None, tpm: int | None) -> Admission:
        window, requests, tokens = self._current(key)
        retry = (window + 1) * WINDOW_S - self._clock()
        if rpm is not None and requests >= rpm:
            return Admission(allowed=False, retry_after_s=retry, limit="requests")
        if tpm is not None and tokens >= tpm:
            return Admission(allowed=False, retry_after_s=retry, limit="tokens")
        self._windows[key] = (window, requests + 1, tokens)
        return Admission(allowed=True)

    def charge(self, key: str, tokens: int) -> None:
        window, requests, used = self._current(key)
        self._windows[key] = (window, requests, used + tokens)


class RateLimiter(Protocol):
    async def admit(self, key: str, rpm: int | None, tpm: int | None) -> Admission: ...

    async def charge(self, key: str, tokens: int) -> None: ...


class LocalRateLimiter:
    def __init__(self, windows: MinuteWindows | None = None) -> None:
        self._windows = windows or MinuteWindows()

    async def admit(self, key: str, rpm: int | None, tpm: int | None) -> Admission:
        return self._windows.admit(key, rpm, tpm)

    async def charge(self, key: str, tokens: int) -> None:
        self._windows.charge(key, tokens)


class Authenticator:
    def __init__(
        self,
        store: KeyStore | None,
        limiter: RateLimiter,
        cache_ttl_s: float = 5.0,
        max_cached_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._limiter = limiter
        self._ttl = cache_ttl_s
        self._clock = clock
        # Revocations take effect within the TTL; the store is not read per request.
        # Keyed by the secret's sha256 (as the store is): memory never holds a caller's
        # key. Unknown keys get their own small map so a flood of them evicts no valid key.
        self._cache: TTLCache[str, KeyRecord] = TTLCache(max_cached_keys, cache_ttl_s, timer=clock)
        self._unknown: TTLCache[str, bool] = TTLCache(UNKNOWN_KEYS_CACHED, cache_ttl_s, timer=clock)
        self._open: tuple[float, bool] | None = None

    async def is_open(self) -> bool:
        if self._store is None:
            return True
        if self._open is None or self._clock() - self._open[0] >= self._ttl:
            self._open = (self._clock(), await asyncio.to_thread(self._store.active_count) == 0)
        return self._open[1]

    async def key(self, request: Request) -> KeyRecord | None:
        """The caller's key; None in open mode. Raises 401 for a missing or bad key."""
        if await self.is_open():
            return None
        secret = bearer(request)
        if secret is None:
            raise AuthenticationError("Missing API key: send 'Authorization: Bearer <key>'.")
        record = await self._lookup(secret)
        if record is None:
            raise AuthenticationError("Incorrect API key provided.")
        return record

    async def _lookup(self, secret: str) -> KeyRecord | None:
        digest = hash_key(secret)
        record = self._cache.get(digest)
        if record is not None or digest in self._unknown:
            return record
        assert self._store is not None
        record = await asyncio.to_thread(self._store.lookup, secret)
        if record is None:
            self._unknown[digest] = True
        else:
            self._cache[digest] = record
        return record

    async def admit(self, record: KeyRecord | None) -> None:
        if record is None or (record.rpm is None and record.tpm is None):
            return
        admission = await self._limiter.admit(record.id, record.rpm, record.tpm)
        if not admission.allowed:
            limit = record.rpm if admission.limit == "requests" else record.tpm
            raise RateLimited(
                f"Rate limit reached for {admission.limit} per minute ({limit}) "
                f"on key '{record.name}'. Retry after {admission.retry_after_s:.0f}s.",
                retry_after_s=admission.retry_after_s,
                code=f"rate_limit_{admission.limit}",
            )

    async def charge(self, record: KeyRecord | None, tokens: int) -> None:
        if record is not None and record.tpm is not None:
            await self._limiter.charge(record.id, tokens)


def bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
