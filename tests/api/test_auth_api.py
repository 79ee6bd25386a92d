"""API keys and per-key limits through the HTTP edge (fake engines)."""

import pytest
from starlette.testclient import TestClient

from gateway.auth import Authenticator, LocalRateLimiter
from gateway.assembly import build_gateway, Edge, Tiers
from gateway.catalog import TierSpec
from gateway.keys import KeyStore
from gateway.settings import LimitSettings

CHAT = "/v1/chat/completions"
BODY = {"model": "small", "messages": [{"role": "user", "content": "hello world"}], "max_tokens": 3}


@pytest.fixture
def store(tmp_path):
    return KeyStore(tmp_path / "keys.sqlite")


@pytest.fixture
def client(engines, store):
    tiers = {"small": TierSpec(served_name="tiny", max_model_len=64), "large": TierSpec(served_name="big", max_model_len=128)}
    auth = Authenticator(store, LocalRateLimiter(), cache_ttl_s=0)
    with TestClient(build_gateway(Tiers(engines, tiers), LimitSettings(), edge=Edge(auth=auth)).app) as client:
        yield client


def bearer(secret):
    return {"authorization": f"Bearer {secret}"}


def test_closed_without_keys(client):
    # An empty store is not open mode: open is decided at start-up (gateway.access), never
    # from the store's contents.
    missing = client.post(CHAT, json=BODY)
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "authentication_error"


def test_keys_required_once_one_exists(client, store):
    _, secret = store.create("app")
    missing = client.post(CHAT, json=BODY)
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "authentication_error"
    assert client.post(CHAT, json=BODY, headers=bearer("gw-wrong")).status_code == 401
    assert client.post(CHAT, json=BODY, headers=bearer(secret)).status_code == 200
    assert client.get("/v1/models").status_code == 401


def test_revoked_key_is_refused(client, store):
    record, secret = store.create("app")
    store.create("other")
    store.revoke(record.id)
    assert client.post(CHAT, json=BODY, headers=bearer(secret)).status_code == 401


def test_requests_per_minute_limit(client, store):
    _, secret = store.create("app", rpm=2)
    for _ in range(2):
        assert client.post(CHAT, json=BODY, headers=bearer(secret)).status_code == 200
    limited = client.post(CHAT, json=BODY, headers=bearer(secret))
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["code"] == "rate_limit_requests"


def test_tokens_per_minute_limit(client, store):
    _, secret = store.create("app", tpm=6)
    assert client.post(CHAT, json=BODY, headers=bearer(secret)).status_code == 200  # 5 tokens
    assert client.post(CHAT, json=BODY, headers=bearer(secret)).status_code == 200  # 10 >= 6 after
    limited = client.post(CHAT, json=BODY, headers=bearer(secret))
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limit_tokens"


def test_store_keeps_only_hashes(store, tmp_path):
    _, secret = store.create("app")
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("keys.sqlite*"))
    assert stored and secret.encode() not in stored
