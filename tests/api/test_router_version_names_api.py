"""A router version named by an admin call is checked before any path is built from it
(the adapter registry's rule, model_files.version_names): a traversal or an absolute path is
a 400 naming `version`, and nothing outside the registry is read or changed."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from adapters.errors import InvalidAdapter
from adapters.manifest import check_version
from gateway.assembly import Edge, Routing, Tiers, build_gateway
from gateway.catalog import TierSpec
from gateway.settings import AdminSettings, LimitSettings
from model_files.version_names import is_version_name
from router.errors import InvalidVersion
from router.registry import RouterRegistry
from tests.support.fake_engine import FakeEngine

ADMIN = "admin-secret"
AS_ADMIN = {"authorization": f"Bearer {ADMIN}"}
BAD = ["../x", "../../etc", "/abs", "/etc/passwd", "..", ".hidden", "a/b", "a\\b", "v1\n", "x" * 65, ""]


@pytest.fixture
def registry(tmp_path):
    return RouterRegistry(tmp_path / "registry")


@pytest.fixture
def client(registry):
    engines = {"small": FakeEngine("tiny"), "large": FakeEngine("big")}
    tiers = {"small": TierSpec(served_name="tiny", max_model_len=256), "large": TierSpec(served_name="big", max_model_len=256)}
    routing = Routing(registry=registry, loader=lambda path, version: pytest.fail(f"loaded {path}"), poll_s=60)
    gateway = build_gateway(
        Tiers(engines, tiers), LimitSettings(), routing=routing, edge=Edge(admin=AdminSettings(api_key=SecretStr(ADMIN))),
    )
    with TestClient(gateway.app, raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize("path", ["/admin/router/activate", "/admin/router/rollback", "/admin/router/candidate"])
@pytest.mark.parametrize("version", ["../x", "/abs", "../../registry/state", "a/../../b"])
def test_an_unsafe_version_is_a_400_before_any_path(client, registry, path, version):
    r = client.post(path, json={"version": version}, headers=AS_ADMIN)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert (error["param"], error["code"]) == ("version", "invalid_version")
    assert registry.state().history == []  # nothing changed


@pytest.mark.parametrize("version", BAD)
def test_adapters_and_router_share_one_version_rule(registry, version):
    assert not is_version_name(version)
    with pytest.raises(InvalidAdapter):
        check_version(version)
    with pytest.raises(InvalidVersion):
        registry.path_of(version)


@pytest.mark.parametrize("version", ["router-v3-2026-11-30", "refund-v2-2026-11-02", "A.b_c-1"])
def test_a_version_name_is_accepted(registry, version):
    assert is_version_name(version) and check_version(version) == version
    assert registry.path_of(version) == registry.root / "versions" / version
