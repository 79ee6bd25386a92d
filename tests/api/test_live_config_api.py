"""Live config through the HTTP edge: limits applied live, rejections visible on /admin/config."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from gateway.assembly import build_gateway, Edge, Tiers
from gateway.catalog import TierSpec
from gateway.settings import AdminSettings, LimitSettings
from tests.support.fake_engine import FakeEngine

CHAT = "/v1/chat/completions"
KEY = "cfg-admin"
AUTH = {"authorization": f"Bearer {KEY}"}


def chat(n_messages: int = 1, **extra):
    return {"model": "small", "messages": [{"role": "user", "content": "hi"}] * n_messages, **extra}


@pytest.fixture
def gateway():
    engines = {"small": FakeEngine("tiny", max_model_len=64), "large": FakeEngine("big", max_model_len=128)}
    tiers = {"small": TierSpec(served_name="tiny", max_model_len=64),
             "large": TierSpec(served_name="big", max_model_len=128)}
    return build_gateway(Tiers(engines, tiers), LimitSettings(max_messages=10),
                         edge=Edge(admin=AdminSettings(api_key=SecretStr(KEY))))


@pytest.fixture
def client(gateway):
    with TestClient(gateway.app, raise_server_exceptions=False) as client:
        yield client


def test_limits_change_live_and_fall_back_to_the_settings(client, gateway):
    assert client.post(CHAT, json=chat(5)).status_code == 200
    assert gateway.reconfigure({"limits": {"max_messages": 4, "max_tokens": 8}})
    r = client.post(CHAT, json=chat(5))
    assert r.status_code == 400 and "the limit is 4" in r.json()["error"]["message"]
    r = client.post(CHAT, json=chat(1, max_tokens=9))
    assert r.status_code == 400 and r.json()["error"]["code"] == "max_tokens_exceeded"
    assert gateway.reconfigure({})  # no limits section: the settings tree's values again
    assert client.post(CHAT, json=chat(5)).status_code == 200
    assert client.post(CHAT, json=chat(11)).status_code == 400


def test_body_size_limit_is_live(client, gateway):
    assert gateway.reconfigure({"limits": {"max_body_bytes": 2048}})
    r = client.post(CHAT, json=chat(1, user="x" * 3000))
    assert r.status_code == 413


@pytest.mark.parametrize("raw, problem", [
    ({"limits": {"max_messages": 0}}, "limits.max_messages: Input should be greater than or equal to 1"),
    ({"limits": {"max_mesages": 3}}, "limits.max_mesages: Extra inputs are not permitted"),
    ({"routing": {"learned": {"thresholds": {"probability": 7}}}}, "routing.learned.thresholds.probability"),
    ({"resilience": {"retries": -1}}, "resilience.retries"),
    ({"shadow": {"rules": [{"target": "huge"}]}}, "shadow.rules.0.target: Value error, must be small, large, candidate"),
])
def test_rejected_config_is_explained_and_the_last_good_one_stays(client, gateway, raw, problem):
    assert gateway.reconfigure({"limits": {"max_messages": 4}})
    assert not gateway.reconfigure(raw)
    view = client.get("/admin/config", headers=AUTH).json()
    assert problem in view["last_rejected"]["message"]
    assert view["config"]["limits"]["max_messages"] == 4 and view["applied"] == 1
    assert client.post(CHAT, json=chat(5)).status_code == 400  # the good limit is still in force


def test_config_view_needs_the_admin_key(client):
    assert client.get("/admin/config").status_code == 401
    assert client.get("/admin/config", headers={"authorization": "Bearer nope"}).status_code == 401
    assert client.get("/admin/config", headers=AUTH).json()["last_rejected"] is None
