"""Who is calling, and may they: API keys (Bearer), per-key limits, and what a caller may
see and switch off.

Open or closed is decided once, at start-up (`gateway.access`), and handed in as `Access`:
closed, every /v1 call needs an active key (401), whatever the store holds later (revoking
the last key refuses every call, it does not open the API); open, a caller without a key
is anonymous and a presented key still identifies its caller. Limits: requests and tokens
per minute per key behind the `RateLimiter` seam (one in-process implementation, and a
shared one, `gateway.shared_limits`: admitted from leases that `deployments.limit_board`
grants, counts synced in the background, so several ingress replicas enforce one budget), and
requests in flight per key per ingress replica (`gateway.concurrency`).

Who sees the insides (detail headers) and may switch an ops control off (`gate: false`):
admin keys, the machine's own user of an open loopback gateway, and (switches) a key
allowed that switch.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Protocol

from functools import partial

from cachetools import TTLCache
from pydantic import BaseModel
from starlette.requests import Request

from gateway.access import Access
from gateway.concurrency import InFlight, concurrency_limited, lease_of
from gateway.errors import AuthenticationError, PermissionDenied, RateLimited
from gateway.keys import SWITCHES, KeyRecord, hash_key
from gateway.middleware import mark_detail

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


class KeyLookup(Protocol):
    """The one read the authenticator makes of a key store (`gateway.keys.KeyStore`)."""

    def lookup(self, secret: str) -> KeyRecord | None: ...


class Authenticator:
    def __init__(
        self,
        store: KeyLookup | None,
        limiter: RateLimiter,
        cache_ttl_s: float = 5.0,
        max_cached_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        *,
        access: Access = Access(),
        default_max_concurrent: int | None = None,
        detail_headers: bool = False,
    ) -> None:
        self._store = store
        self._limiter = limiter
        self.access = access  # decided at start-up; never derived from the store again
        self._default_max_concurrent = default_max_concurrent
        self._detail_for_all = detail_headers
        self._in_flight = InFlight()
        # Revocations take effect within the TTL; the store is not read per request.
        # Keyed by the secret's sha256 (as the store is): memory never holds a caller's
        # key. Unknown keys get their own small map so a flood of them evicts no valid key.
        self._cache: TTLCache[str, KeyRecord] = TTLCache(max_cached_keys, cache_ttl_s, timer=clock)
        self._unknown: TTLCache[str, bool] = TTLCache(UNKNOWN_KEYS_CACHED, cache_ttl_s, timer=clock)

    @property
    def has_keys(self) -> bool:
        """A key store is behind this authenticator (admin-role keys can be checked)."""
        return self._store is not None

    async def key(self, request: Request) -> KeyRecord | None:
        """The caller of a /v1 call: its key, None for an anonymous caller of an open gateway.
        Raises 401 for a missing or bad key on a closed one, 403 for a metrics-only key, 429
        when the key has its most requests in flight."""
        record = await self.identify(request)
        if record is None and not self.access.open:
            if bearer(request) is None:
                raise AuthenticationError("Missing API key: send 'Authorization: Bearer <key>'.")
            raise AuthenticationError("Incorrect API key provided.")
        if record is not None and record.role == "metrics":
            raise PermissionDenied(f"Key '{record.name}' is a metrics key: it reads /metrics and /ready only.")
        self._hold_slot(record, request)
        mark_detail(request.scope, self._detail_for_all or self.trusted(record))
        return record

    async def identify(self, request: Request) -> KeyRecord | None:
        """The active key the request presents, or None (no key, unknown or revoked): no refusal."""
        secret = bearer(request)
        if secret is None or self._store is None:
            return None
        return await self._lookup(secret)

    def trusted(self, record: KeyRecord | None) -> bool:
        """Sees the gateway's insides and may switch ops controls off: an admin key, or
        anyone on an open gateway bound to loopback (the machine's own user)."""
        return self.access.trusts_anonymous or (record is not None and record.role == "admin")

    def check_switches(self, record: KeyRecord | None, body: object) -> None:
        """403 for a switch that turns an ops control off (`gate: false`, `grounding: false`)
        sent by a caller not allowed it."""
        for name in SWITCHES:
            if getattr(body, name, None) is False and not self._may_switch(record, name):
                who = f"key '{record.name}'" if record is not None else "a caller without a key"
                raise PermissionDenied(
                    f"'{name}: false' turns off an ops control, which {who} may not do; an operator allows it "
                    f"per key (`gateway keys create --allow-switch {name}`).",
                    param=name, code="switch_not_allowed",
                )

    def _may_switch(self, record: KeyRecord | None, name: str) -> bool:
        return self.trusted(record) or (record is not None and name in record.switches)

    def _hold_slot(self, record: KeyRecord | None, request: Request) -> None:
        if record is None:
            return  # anonymous callers share the replica's cap (limits.max_in_flight)
        cap = record.max_concurrent if record.max_concurrent is not None else self._default_max_concurrent
        if cap is None:
            return
        lease = lease_of(request.scope)
        if lease is None:  # a slot nobody would release: fail loudly, never silently uncapped
            raise RuntimeError("per-key concurrency needs gateway.concurrency.InFlightMiddleware around the app")
        if not self._in_flight.enter(record.id, cap):
            raise concurrency_limited(
                f"Key '{record.name}' has its limit of {cap} requests in flight; retry when one ends."
            )
        lease.hold(partial(self._in_flight.leave, record.id))

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
