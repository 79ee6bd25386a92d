"""Issue 27, closed by default: open mode is decided at start-up, never from the key store's
contents; the insides (/metrics, /ready's detail, the detail headers) and the client switches
that turn an ops control off are for admin keys (or the user of an open loopback gateway);
bodies are JSON only and the Host header must name the gateway.

In-process app with fake engines and a SQLite key store in tmp_path.
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from gateway.access import Access
from gateway.assembly import Edge, Tiers, build_gateway
from gateway.auth import Authenticator, LocalRateLimiter
from gateway.catalog import TierSpec
from gateway.keys import KeyStore
from gateway.settings import AdminSettings, LimitSettings
from tests.support.fake_engine import FakeEngine

CHAT = "/v1/chat/completions"
BODY = {"model": "auto", "messages": [{"role": "user", "content": "hello world"}], "max_tokens": 3}
TIERS = {"small": TierSpec(served_name="tiny", max_model_len=64),
         "large": TierSpec(served_name="big", max_model_len=128)}
DETAIL = {"x-gateway-route-reason", "x-gateway-route-score", "x-gateway-route-threshold", "x-gateway-router-version"}
ADMIN_KEY = "cfg-admin-secret"


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


@pytest.fixture
def store(tmp_path) -> KeyStore:
    return KeyStore(tmp_path / "keys.sqlite")


def client_for(store: KeyStore | None, access: Access = Access(), detail_headers: bool = False) -> TestClient:
    engines = {"small": FakeEngine("tiny", max_model_len=64), "large": FakeEngine("big", max_model_len=128)}
    auth = Authenticator(store, LocalRateLimiter(), cache_ttl_s=0, access=access, detail_headers=detail_headers)
    admin = AdminSettings(api_key=SecretStr(ADMIN_KEY))
    gateway = build_gateway(Tiers(engines, TIERS), LimitSettings(), edge=Edge(auth=auth, admin=admin))
    return TestClient(gateway.app, raise_server_exceptions=False)


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


# ---- 1. authentication does not fail open ---------------------------------------------


def test_revoking_the_last_key_refuses_every_call_instead_of_opening_the_api(store):
    record, secret = store.create("only")
    with client_for(store) as client:
        assert client.post(CHAT, json=BODY, headers=bearer(secret)).status_code == 200
        store.revoke(record.id)
        assert error_of(client.post(CHAT, json=BODY), 401)["type"] == "authentication_error"
        assert client.post(CHAT, json=BODY, headers=bearer(secret)).status_code == 401
        assert client.get("/v1/models").status_code == 401


def test_a_closed_gateway_without_a_store_refuses_every_call():
    with client_for(None) as client:
        assert client.post(CHAT, json=BODY).status_code == 401
        assert client.post(CHAT, json=BODY, headers=bearer("gw-anything")).status_code == 401


def test_open_mode_serves_anonymous_callers_and_still_knows_presented_keys(store):
    _, admin = store.create("ops", role="admin")
    with client_for(store, Access(open=True, local=False)) as client:
        anonymous = client.post(CHAT, json=BODY, headers=bearer("unused"))
        assert anonymous.status_code == 200 and not DETAIL & set(anonymous.headers)
        keyed = client.post(CHAT, json=BODY, headers=bearer(admin))
        assert DETAIL <= set(keyed.headers)


def test_a_metrics_key_cannot_call_the_api(store):
    _, scrape = store.create("prometheus", role="metrics")
    with client_for(store) as client:
        assert error_of(client.post(CHAT, json=BODY, headers=bearer(scrape)), 403)["type"] == "permission_error"


# ---- 2. the insides are for observers ---------------------------------------------------


def test_metrics_need_an_admin_or_metrics_key(store):
    _, user = store.create("app")
    _, scrape = store.create("prometheus", role="metrics")
    _, admin = store.create("ops", role="admin")
    with client_for(store) as client:
        assert error_of(client.get("/metrics"), 401)["type"] == "authentication_error"
        assert client.get("/metrics", headers=bearer("gw-wrong")).status_code == 401
        assert error_of(client.get("/metrics", headers=bearer(user)), 403)["type"] == "permission_error"
        for secret in (scrape, admin, ADMIN_KEY):
            scraped = client.get("/metrics", headers=bearer(secret))
            assert scraped.status_code == 200 and "gateway_requests_total" in scraped.text


def test_open_on_a_public_bind_keeps_metrics_closed(store):
    with client_for(store, Access(open=True, local=False)) as client:
        assert client.get("/metrics").status_code == 401


def test_open_on_loopback_shows_metrics_to_the_machines_user():
    with client_for(None, Access(open=True, local=True)) as client:
        assert client.get("/metrics").status_code == 200


def test_ready_tells_anonymous_callers_the_status_only(store):
    _, scrape = store.create("prometheus", role="metrics")
    with client_for(store) as client:
        assert client.get("/ready").json() == {"status": "ready"}
        detailed = client.get("/ready", headers=bearer(scrape)).json()
        assert detailed["status"] == "ready" and set(detailed["tiers"]) == {"small", "large"}
        assert client.get("/ready", headers=bearer(ADMIN_KEY)).json()["tiers"]["small"]["ready"] is True


def test_ready_hides_a_failing_probes_text_from_anonymous_callers(store):
    engines = {"small": FakeEngine("tiny", max_model_len=64), "large": FakeEngine("big", max_model_len=128)}

    async def broken():
        raise RuntimeError("connect to 10.0.0.7:8000 refused")
    engines["large"].load = broken
    auth = Authenticator(store, LocalRateLimiter(), cache_ttl_s=0)
    gateway = build_gateway(Tiers(engines, TIERS), LimitSettings(),
                            edge=Edge(auth=auth, admin=AdminSettings(api_key=SecretStr(ADMIN_KEY))))
    with TestClient(gateway.app) as client:
        anonymous = client.get("/ready")
        assert anonymous.status_code == 503 and anonymous.json() == {"status": "not ready"}
        detailed = client.get("/ready", headers=bearer(ADMIN_KEY))
        assert detailed.status_code == 503 and "10.0.0.7" in detailed.json()["tiers"]["large"]["error"]


def test_health_stays_open_and_says_nothing(store):
    with client_for(store) as client:
        assert client.get("/health").json() == {"status": "ok"}


def test_detail_headers_go_to_admin_keys_only(store):
    _, user = store.create("app")
    _, admin = store.create("ops", role="admin")
    with client_for(store) as client:
        plain = client.post(CHAT, json=BODY, headers=bearer(user))
        assert plain.headers["x-gateway-tier"] and plain.headers["x-request-id"]
        assert not DETAIL & set(plain.headers)
        assert not any(h.startswith("x-gateway-") and h != "x-gateway-tier" for h in plain.headers)
        assert DETAIL <= set(client.post(CHAT, json=BODY, headers=bearer(admin)).headers)
        streamed = client.post(CHAT, json={**BODY, "stream": True}, headers=bearer(user))
        assert streamed.headers["x-gateway-tier"] and not DETAIL & set(streamed.headers)


def test_the_debug_setting_gives_every_caller_the_detail_headers(store):
    _, user = store.create("app")
    with client_for(store, detail_headers=True) as client:
        assert DETAIL <= set(client.post(CHAT, json=BODY, headers=bearer(user)).headers)


# ---- 3. JSON bodies only; the Host header names the gateway ------------------------------


@pytest.mark.parametrize("content_type", [
    None, "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
])
def test_a_body_that_is_not_declared_json_is_415(content_type):
    import json

    headers = {} if content_type is None else {"content-type": content_type}
    with client_for(None, Access(open=True, local=True)) as client:
        response = client.post(CHAT, content=json.dumps(BODY).encode(), headers=headers)
        assert error_of(response, 415)["code"] == "unsupported_media_type"


LOOPBACK_ONLY = Access(open=True, local=True, allowed_hosts=("127.0.0.1", "::1", "localhost"))


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost", "LOCALHOST:80", "[::1]:8000"])
def test_loopback_names_are_answered(host):
    with client_for(None, LOOPBACK_ONLY) as client:
        assert client.post(CHAT, json=BODY, headers={"host": host}).status_code == 200


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8000", "testserver", "", "127.0.0.1.evil.io"])
def test_a_rebinding_pages_host_is_refused_before_anything_runs(host):
    with client_for(None, LOOPBACK_ONLY) as client:
        for response in (client.post(CHAT, json=BODY, headers={"host": host}), client.get("/metrics", headers={"host": host})):
            assert error_of(response, 400)["code"] == "invalid_host"
            assert response.headers["x-request-id"]


def test_a_wildcard_allows_subdomains_only():
    access = Access(open=True, local=False, allowed_hosts=("*.example.com",))
    with client_for(None, access) as client:
        assert client.post(CHAT, json=BODY, headers={"host": "api.example.com"}).status_code == 200
        assert client.post(CHAT, json=BODY, headers={"host": "example.com.evil"}).status_code == 400


# ---- 4. switches that turn an ops control off ------------------------------------------


@pytest.mark.parametrize("field", ["gate", "grounding"])
def test_a_key_without_the_switch_gets_403_naming_the_field(store, field):
    _, user = store.create("app")
    with client_for(store) as client:
        error = error_of(client.post(CHAT, json={**BODY, field: False}, headers=bearer(user)), 403)
        assert error["code"] == "switch_not_allowed" and error["param"] == field and "app" in error["message"]
        # The other direction (asking for the control) is anyone's.
        assert client.post(CHAT, json={**BODY, field: None}, headers=bearer(user)).status_code == 200


def test_a_key_allowed_the_switch_and_an_admin_key_may_send_it(store):
    _, allowed = store.create("agent", switches=("gate",))
    _, admin = store.create("ops", role="admin")
    with client_for(store) as client:
        assert client.post(CHAT, json={**BODY, "gate": False}, headers=bearer(allowed)).status_code == 200
        assert client.post(CHAT, json={**BODY, "grounding": False}, headers=bearer(allowed)).status_code == 403
        assert client.post(CHAT, json={**BODY, "gate": False}, headers=bearer(admin)).status_code == 200


def test_switches_in_the_responses_api_are_checked_too(store):
    _, user = store.create("app")
    with client_for(store) as client:
        response = client.post("/v1/responses", json={"model": "small", "input": "hi", "gate": False},
                               headers=bearer(user))
        assert error_of(response, 403)["code"] == "switch_not_allowed"


def test_open_mode_allows_switches_on_loopback_only():
    with client_for(None, Access(open=True, local=True)) as client:
        assert client.post(CHAT, json={**BODY, "gate": False}).status_code == 200
    with client_for(None, Access(open=True, local=False)) as client:
        assert error_of(client.post(CHAT, json={**BODY, "gate": False}), 403)["code"] == "switch_not_allowed"


# ---- 6. Ray Serve's control headers -------------------------------------------------------


@pytest.mark.parametrize(("header", "value"), [
    ("x-request-disconnect-disabled", "?1"), ("X-Request-Disconnect-Disabled", "?0"),
    ("x-request-timeout-seconds", "-1"),
])
def test_ray_control_headers_are_refused_before_any_work(header, value):
    engines = {"small": FakeEngine("tiny", max_model_len=64), "large": FakeEngine("big", max_model_len=128)}
    gateway = build_gateway(Tiers(engines, TIERS), LimitSettings())
    with TestClient(gateway.app) as client:
        error = error_of(client.post(CHAT, json=BODY, headers={header: value}), 400)
        assert error["code"] == "reserved_header" and error["param"] == header.lower()
        assert not engines["small"].seen and not engines["large"].seen
        assert client.post(CHAT, json=BODY).status_code == 200
