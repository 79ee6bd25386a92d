"""Every /admin route refuses a caller without a key (401) and one with a user key (403)
before its handler runs. The routes are read off the mount, built from every admin group
in gateway.admin, so a new route or group is covered without touching this test."""

from __future__ import annotations

import inspect
import re

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from gateway import admin
from gateway.admin import AdminGroup, AdminGuard, admin_routes
from gateway.auth import Authenticator, LocalRateLimiter
from gateway.errors import GatewayError
from gateway.keys import KeyStore


def every_group() -> list[AdminGroup]:
    """Each group over nothing (None for every dependency): the guard must refuse before a
    handler touches its capability."""
    classes = [
        c for c in vars(admin).values()
        if isinstance(c, type) and c.__module__ == admin.__name__ and c is not AdminGroup and hasattr(c, "routes")
    ]
    def required(cls: type) -> int:  # a parameter with a default (a route prefix) keeps it
        return sum(p.default is inspect.Parameter.empty for p in inspect.signature(cls).parameters.values())

    return [cls(*[None] * required(cls)) for cls in classes]


def every_call() -> list[tuple[str, str]]:
    (mount,) = admin_routes(AdminGuard(None), *every_group())
    assert isinstance(mount, Mount) and mount.path == "/admin"
    calls = []
    for route in mount.routes:
        assert isinstance(route, Route)
        path = "/admin" + re.sub(r"\{[^}]+\}", "some-domain", route.path)
        calls += [(method, path) for method in sorted(route.methods or ()) if method != "HEAD"]
    return calls


CALLS = every_call()


async def as_openai_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return JSONResponse(exc.body(), status_code=exc.status)


@pytest.fixture
def client_and_user_key(tmp_path):
    store = KeyStore(tmp_path / "keys.sqlite")
    _, user_key = store.create("app-user")
    guard = AdminGuard(SecretStr("admin-secret"), Authenticator(store, LocalRateLimiter(), cache_ttl_s=0))
    app = Starlette(routes=admin_routes(guard, *every_group()), exception_handlers={GatewayError: as_openai_error})
    with TestClient(app, raise_server_exceptions=True) as client:
        yield client, user_key


def test_every_capability_has_its_routes_mounted():
    paths = {path for _, path in CALLS}
    assert {"/admin/config", "/admin/adapters", "/admin/router", "/admin/rollout"} <= paths
    assert len(CALLS) >= 16


@pytest.mark.parametrize(("method", "path"), CALLS, ids=[f"{m} {p}" for m, p in CALLS])
def test_without_a_key_is_401(client_and_user_key, method, path):
    client, _ = client_and_user_key
    r = client.request(method, path, json={"version": "v1"})
    assert r.status_code == 401, r.text
    assert r.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize(("method", "path"), CALLS, ids=[f"{m} {p}" for m, p in CALLS])
def test_with_a_user_key_is_403(client_and_user_key, method, path):
    client, user_key = client_and_user_key
    r = client.request(method, path, json={"version": "v1"}, headers={"authorization": f"Bearer {user_key}"})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "permission_denied"
    assert "not an admin key" in r.json()["error"]["message"]
