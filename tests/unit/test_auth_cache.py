"""The authenticator's key cache: bounded, keyed by hash, revocations still within the TTL."""

import secrets
from datetime import datetime, timezone

import pytest
from starlette.requests import Request

from gateway import auth as auth_module
from gateway.auth import Authenticator, LocalRateLimiter
from gateway.errors import AuthenticationError
from gateway.keys import KeyRecord, KeyStore, hash_key

TTL_S = 5.0


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def request(secret: str) -> Request:
    return Request({"type": "http", "headers": [(b"authorization", f"Bearer {secret}".encode())]})


@pytest.fixture
def store(tmp_path):
    return KeyStore(tmp_path / "keys.sqlite")


class MemoryStore:
    """The two reads the authenticator makes of a KeyStore, without SQLite: keeps a flood
    of thousands of lookups fast."""

    def __init__(self, secret: str, record: KeyRecord) -> None:
        self._by_hash = {hash_key(secret): record}

    def active_count(self) -> int:
        return len(self._by_hash)

    def lookup(self, secret: str) -> KeyRecord | None:
        return self._by_hash.get(hash_key(secret))


async def test_flood_of_unknown_keys_stays_bounded_and_evicts_no_valid_key():
    secret = "gw-valid"
    record = KeyRecord(id="k1", name="app", role="user", created_at=datetime.now(timezone.utc))
    auth = Authenticator(MemoryStore(secret, record), LocalRateLimiter(), cache_ttl_s=60)
    assert (await auth.key(request(secret))).id == record.id
    for _ in range(5_000):
        with pytest.raises(AuthenticationError):
            await auth.key(request("gw-" + secrets.token_urlsafe(16)))
    assert len(auth._cache) == 1  # only the valid key
    assert len(auth._unknown) <= auth_module.UNKNOWN_KEYS_CACHED
    assert hash_key(secret) in auth._cache
    assert (await auth.key(request(secret))).id == record.id


async def test_cache_holds_hashes_not_secrets(store):
    _, secret = store.create("app")
    auth = Authenticator(store, LocalRateLimiter(), cache_ttl_s=60)
    await auth.key(request(secret))
    with pytest.raises(AuthenticationError):
        await auth.key(request("gw-unknown"))
    assert secret not in auth._cache and "gw-unknown" not in auth._unknown
    assert hash_key(secret) in auth._cache and hash_key("gw-unknown") in auth._unknown


async def test_valid_keys_beyond_the_maximum_evict_the_oldest(store):
    created = [store.create(f"app{i}") for i in range(5)]
    auth = Authenticator(store, LocalRateLimiter(), cache_ttl_s=60, max_cached_keys=3)
    for record, secret in created:
        assert (await auth.key(request(secret))).id == record.id
    assert len(auth._cache) == 3
    assert [hash_key(secret) in auth._cache for _, secret in created] == [False, False, True, True, True]


async def test_revocation_takes_effect_after_the_ttl(store):
    clock = Clock()
    record, secret = store.create("app")
    store.create("other")  # keeps the gateway closed once `app` is revoked
    auth = Authenticator(store, LocalRateLimiter(), cache_ttl_s=TTL_S, clock=clock)
    assert (await auth.key(request(secret))).id == record.id
    store.revoke(record.id)
    clock.now = TTL_S - 0.1
    assert (await auth.key(request(secret))).id == record.id  # cached: the store is not read per request
    clock.now = TTL_S
    with pytest.raises(AuthenticationError, match="Incorrect API key"):
        await auth.key(request(secret))


async def test_unknown_key_is_looked_up_once_per_ttl(store, monkeypatch):
    clock = Clock()
    store.create("app")
    auth = Authenticator(store, LocalRateLimiter(), cache_ttl_s=TTL_S, clock=clock)
    lookups = []
    real_lookup = store.lookup
    monkeypatch.setattr(store, "lookup", lambda secret: lookups.append(1) or real_lookup(secret))
    for now in (0.0, 1.0, TTL_S):
        clock.now = now
        with pytest.raises(AuthenticationError):
            await auth.key(request("gw-stale"))
    assert len(lookups) == 2  # at 0 and once the TTL ran out
