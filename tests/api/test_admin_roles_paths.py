"""Who may call /admin/*: the configured admin key or an admin-role API key, never a user key.

In-process app with fake engines and a SQLite key store in tmp_path (gateway.admin_auth).
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from gateway.assembly import Edge, Tiers, build_gateway
from gateway.auth import Authenticator, LocalRateLimiter
from gateway.catalog import TierSpec
from gateway.keys import KeyStore
from gateway.settings import AdminSettings, LimitSettings
from tests.support.fake_engine import FakeEngine

CONFIG = "/admin/config"
CONFIGURED_KEY = "cfg-admin-secret"
TIERS = {"small": TierSpec(served_name="tiny", max_model_len=64),
         "large": TierSpec(served_name="big", max_model_len=128)}


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def assert_openai_error(r, status: int, error_type: str, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["type"] == error_type
    if code is not None:
        assert error["code"] == code
    return error


@pytest.fixture
def store(tmp_path) -> KeyStore:
    return KeyStore(tmp_path / "keys.sqlite")


def make_client(store: KeyStore, admin_key: str | None):
    engines = {"small": FakeEngine("tiny", max_model_len=64), "large": FakeEngine("big", max_model_len=128)}
    auth = Authenticator(store, LocalRateLimiter(), cache_ttl_s=0)
    admin = AdminSettings(api_key=SecretStr(admin_key) if admin_key else None)
    gateway = build_gateway(Tiers(engines, TIERS), LimitSettings(), edge=Edge(auth=auth, admin=admin))
    return TestClient(gateway.app, raise_server_exceptions=False)


@pytest.fixture(params=["with-configured-key", "role-keys-only"])
def keyed(request, store):
    """A user key and an admin-role key, with and without GATEWAY_ADMIN__API_KEY set."""
    _, user = store.create("app-user")
    admin_record, admin = store.create("ops", role="admin")
    configured = CONFIGURED_KEY if request.param == "with-configured-key" else None
    with make_client(store, configured) as client:
        yield client, user, admin, admin_record


def test_user_key_on_admin_config_is_403_naming_the_key(keyed):
    client, user, _, _ = keyed
    error = assert_openai_error(client.get(CONFIG, headers=bearer(user)), 403, "permission_error", "permission_denied")
    assert "app-user" in error["message"] and "not an admin key" in error["message"]


def test_admin_role_key_on_admin_config_is_200(keyed):
    client, _, admin, _ = keyed
    r = client.get(CONFIG, headers=bearer(admin))
    assert r.status_code == 200, r.text
    assert "config" in r.json() and r.json()["last_rejected"] is None


def test_user_key_is_still_valid_outside_admin(keyed):
    client, user, _, _ = keyed
    assert client.get("/v1/models", headers=bearer(user)).status_code == 200


@pytest.mark.parametrize("headers", [
    {},
    {"authorization": "Bearer"},
    {"authorization": "Basic dXNlcjpwYXNz"},
], ids=["none", "empty-bearer", "basic-scheme"])
def test_admin_without_a_bearer_token_is_401(keyed, headers):
    client, _, _, _ = keyed
    assert_openai_error(client.get(CONFIG, headers=headers), 401, "authentication_error")


def test_unknown_key_on_admin_is_401_not_403(keyed):
    client, _, _, _ = keyed
    assert_openai_error(client.get(CONFIG, headers=bearer("gw-not-a-key")), 401, "authentication_error")


def test_revoked_admin_key_is_401(keyed, store):
    client, _, admin, admin_record = keyed
    store.revoke(admin_record.id)
    assert_openai_error(client.get(CONFIG, headers=bearer(admin)), 401, "authentication_error")


def test_configured_admin_key_works_next_to_stored_keys(store):
    store.create("app-user")
    with make_client(store, CONFIGURED_KEY) as client:
        assert client.get(CONFIG, headers=bearer(CONFIGURED_KEY)).status_code == 200
        # The configured admin key is not an API key: /v1 refuses it once keys exist.
        assert client.get("/v1/models", headers=bearer(CONFIGURED_KEY)).status_code == 401


def test_configured_admin_key_alone_works_with_an_open_store(store):
    with make_client(store, CONFIGURED_KEY) as client:
        assert client.get(CONFIG, headers=bearer(CONFIGURED_KEY)).status_code == 200
        assert_openai_error(client.get(CONFIG, headers=bearer("wrong")), 401, "authentication_error")


def test_an_empty_store_and_no_configured_key_refuse_every_admin_call(store):
    # An empty store is no longer "open": nothing it could hold authorises this call.
    with make_client(store, None) as client:
        for headers in ({}, bearer("anything")):
            assert_openai_error(client.get(CONFIG, headers=headers), 401, "authentication_error")


def test_admin_is_disabled_with_no_configured_key_and_no_store():
    engines = {"small": FakeEngine("tiny", max_model_len=64), "large": FakeEngine("big", max_model_len=128)}
    gateway = build_gateway(Tiers(engines, TIERS), LimitSettings())  # in-process: open, no key store
    with TestClient(gateway.app) as client:
        for headers in ({}, bearer("anything")):
            assert_openai_error(client.get(CONFIG, headers=headers), 403, "permission_error", "admin_disabled")


def test_only_user_keys_and_no_configured_key_refuses_every_key(store):
    _, user = store.create("app-user")
    with make_client(store, None) as client:
        assert_openai_error(client.get(CONFIG, headers=bearer(user)), 403, "permission_error", "permission_denied")
        assert_openai_error(client.get(CONFIG, headers=bearer(CONFIGURED_KEY)), 401, "authentication_error")


def test_admin_key_created_after_start_is_accepted(store):
    _, user = store.create("app-user")
    with make_client(store, None) as client:
        assert client.get(CONFIG, headers=bearer(user)).status_code == 403
        _, admin = store.create("late-ops", role="admin")
        assert client.get(CONFIG, headers=bearer(admin)).status_code == 200
