"""Adapters through the HTTP edge, with fake engines: resolution, selection, admin API."""

import numpy as np
import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from adapters.registry import AdapterRegistry
from engines.types import AdapterReport
from adapters.directory import AdapterDirectory
from gateway.assembly import AdapterParts, Edge, Features, Tiers, build_gateway
from gateway.catalog import TierSpec
from gateway.settings import AdminSettings, LimitSettings
from router.config import RoutingConfig
from tests.support.adapters import BASE, make_adapter

KEY = "admin-secret"
AUTH = {"authorization": f"Bearer {KEY}"}


class KeywordEmbedder:
    """2-d embeddings: refund-ish, order-ish, or neither (between them, below threshold)."""

    dim = 2

    def embed(self, texts):
        out = []
        for text in texts:
            if "refund" in text:
                out.append([1.0, 0.0])
            elif "order" in text:
                out.append([0.0, 1.0])
            else:
                out.append([0.7071, 0.7071])
        return np.asarray(out, dtype=np.float32)


class FakeFleet:
    def __init__(self, engine, registry):
        self.engine, self.registry = engine, registry

    async def probe(self, adapter):
        await self.engine.add_adapter(adapter)

    async def reports(self):
        return {"replica-1": AdapterReport(generation=self.registry.state().generation)}


@pytest.fixture
def registry(tmp_path):
    registry = AdapterRegistry(tmp_path / "registry", base=BASE)
    src = tmp_path / "src"
    registry.register(make_adapter(src, "refund", "refund-v1-2026-11-01", centroid=[1.0, 0.0]))
    registry.register(make_adapter(src, "refund", "refund-v2-2026-11-02", centroid=[1.0, 0.0]))
    registry.register(make_adapter(src, "order", "order-v1-2026-11-01", centroid=[0.0, 1.0]))
    registry.activate("refund", "refund-v1-2026-11-01")
    registry.activate("order", "order-v1-2026-11-01")
    return registry


@pytest.fixture
def client(engines, registry):
    tiers = {
        "small": TierSpec(served_name="tiny", max_model_len=64),
        "large": TierSpec(served_name="big", max_model_len=128),
    }
    directory = AdapterDirectory(registry, KeywordEmbedder(), "minilm", 0.9)
    # Baseline policy, short prompts -> small: auto traffic exercises adapter selection.
    from gateway.live_config import LiveConfig
    config = LiveConfig(routing=RoutingConfig(policy="baseline"))
    gateway = build_gateway(Tiers(engines, tiers), LimitSettings(max_body_bytes=4096), config=config, edge=Edge(admin=AdminSettings(api_key=SecretStr(KEY))), features=Features(adapters=AdapterParts(directory, FakeFleet(engines["small"], registry))))
    with TestClient(gateway.app, raise_server_exceptions=False) as client:
        yield client


def chat(client, model, text="hello there", **extra):
    return client.post("/v1/chat/completions", json={
        "model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 3, **extra,
    })


def test_pinned_domain_uses_active_version(client, engines):
    response = chat(client, "small:refund")
    assert response.status_code == 200
    assert response.headers["x-gateway-adapter"] == "refund-v1-2026-11-01"
    assert response.json()["model"] == "tiny:refund-v1-2026-11-01"
    assert engines["small"].seen[-1].adapter.name == "refund-v1-2026-11-01"


def test_pinned_version(client, engines):
    response = chat(client, "small:refund@refund-v2-2026-11-02")
    assert response.status_code == 200
    assert engines["small"].seen[-1].adapter.name == "refund-v2-2026-11-02"


def test_unknown_domain_is_404(client):
    response = chat(client, "small:billing")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "adapter_not_found" and error["param"] == "model"
    assert "Active domains: order, refund" in error["message"]


def test_plain_small_uses_base_model(client, engines):
    assert chat(client, "small", "my refund please").status_code == 200
    assert engines["small"].seen[-1].adapter is None


def test_auto_selects_domain_adapter(client, engines):
    response = chat(client, "auto", "where is my order")
    assert response.headers["x-gateway-tier"] == "small"
    assert response.headers["x-gateway-adapter"] == "order-v1-2026-11-01"


def test_small_auto_is_the_small_tier_with_the_selected_adapter(client, engines):
    # What `router collect` asks to learn the small tier's outcome as auto traffic gets it.
    response = chat(client, "small:auto", "where is my order")
    assert response.status_code == 200 and response.headers["x-gateway-tier"] == "small"
    assert response.headers["x-gateway-route-reason"] == "explicit"
    assert engines["small"].seen[-1].adapter.name == "order-v1-2026-11-01"
    assert chat(client, "small:auto", "tell me a joke").status_code == 200  # below the similarity
    assert engines["small"].seen[-1].adapter is None


def test_no_adapter_domain_may_be_called_auto(registry, tmp_path):
    from adapters.errors import AdapterNotFound
    with pytest.raises(AdapterNotFound):
        registry.register(make_adapter(tmp_path / "auto", "auto", "auto-v1-2026-11-01", centroid=[1.0, 0.0]))


def test_auto_below_similarity_uses_base(client, engines):
    response = chat(client, "auto", "tell me a joke")
    assert "x-gateway-adapter" not in response.headers
    assert engines["small"].seen[-1].adapter is None


def test_category_hint_beats_embedding(client):
    response = chat(client, "auto", "where is my order", metadata={"category": "refund"})
    assert response.headers["x-gateway-adapter"] == "refund-v1-2026-11-01"


def test_models_lists_adapters(client):
    cards = {card["id"]: card for card in client.get("/v1/models").json()["data"]}
    assert cards["small:refund"]["parent"] == "tiny"
    assert cards["small:refund"]["active_version"] == "refund-v1-2026-11-01"
    assert cards["small:refund@refund-v2-2026-11-02"]["status"] == "available"


def test_admin_needs_key(client):
    assert client.get("/admin/adapters").status_code == 401
    wrong = client.get("/admin/adapters", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "authentication_error"


def test_admin_activate_and_rollback(client):
    response = client.post("/admin/adapters/refund/activate", json={"version": "refund-v2-2026-11-02"}, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["active"] == "refund-v2-2026-11-02" and body["converged"] and body["replicas"] == 1
    assert chat(client, "small:refund").headers["x-gateway-adapter"] == "refund-v2-2026-11-02"
    back = client.post("/admin/adapters/refund/rollback", headers=AUTH)
    assert back.json()["active"] == "refund-v1-2026-11-01"
    assert chat(client, "small:refund").headers["x-gateway-adapter"] == "refund-v1-2026-11-01"


def test_admin_rollback_without_history_is_409(client):
    response = client.post("/admin/adapters/order/rollback", headers=AUTH)
    assert response.status_code == 409 and response.json()["error"]["code"] == "rollback_unavailable"


def test_admin_unload_then_base_answers(client, engines):
    assert client.delete("/admin/adapters/order", headers=AUTH).status_code == 200
    assert chat(client, "small:order").status_code == 404
    chat(client, "auto", "where is my order")
    assert engines["small"].seen[-1].adapter is None


def test_admin_load_corrupt_adapter_keeps_active(client, tmp_path, registry):
    bad = make_adapter(tmp_path / "incoming", "refund", "refund-v3-2026-11-03")
    (bad / "adapter_model.safetensors").write_bytes(b"garbage")
    response = client.post("/admin/adapters", json={"path": str(bad), "activate": True}, headers=AUTH)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_adapter"
    assert chat(client, "small:refund").headers["x-gateway-adapter"] == "refund-v1-2026-11-01"


def test_admin_load_refused_by_engine_keeps_active(client, tmp_path, engines):
    path = make_adapter(tmp_path / "incoming", "refund", "refund-v3-2026-11-03")
    engines["small"].bad_adapters.add("refund-v3-2026-11-03")
    response = client.post("/admin/adapters", json={"path": str(path), "activate": True}, headers=AUTH)
    assert response.status_code == 400 and "refused" in response.json()["error"]["message"]
    assert chat(client, "small:refund").headers["x-gateway-adapter"] == "refund-v1-2026-11-01"


def test_admin_load_and_activate(client, tmp_path):
    path = make_adapter(tmp_path / "incoming", "refund", "refund-v3-2026-11-03")
    response = client.post("/admin/adapters", json={"path": str(path), "activate": True}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert chat(client, "small:refund").headers["x-gateway-adapter"] == "refund-v3-2026-11-03"


def test_admin_unknown_domain_and_bad_body(client):
    assert client.post("/admin/adapters/billing/activate", json={"version": "x"}, headers=AUTH).status_code == 404
    missing = client.post("/admin/adapters/refund/activate", json={}, headers=AUTH)
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "version"
    junk = client.post("/admin/adapters", content=b"{nope", headers={**AUTH, "content-type": "application/json"})
    assert junk.status_code == 400


@pytest.mark.parametrize("version", ["../../registry/versions/refund-v2-2026-11-02", "/etc"])
@pytest.mark.parametrize("change", ["activate", "candidate", "rollback"])
def test_admin_version_that_is_not_a_plain_name_is_400(client, change, version):
    response = client.post(f"/admin/adapters/refund/{change}", json={"version": version}, headers=AUTH)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_adapter"
    assert chat(client, "small:refund").headers["x-gateway-adapter"] == "refund-v1-2026-11-01"


def test_admin_disabled_without_key(engines, registry):
    tiers = {"small": TierSpec(served_name="tiny", max_model_len=64), "large": TierSpec(served_name="big", max_model_len=128)}
    directory = AdapterDirectory(registry, None, "minilm", 0.9)
    gateway = build_gateway(Tiers(engines, tiers), LimitSettings(), edge=Edge(admin=AdminSettings()), features=Features(adapters=AdapterParts(directory, FakeFleet(engines["small"], registry))))
    with TestClient(gateway.app) as client:
        response = client.get("/admin/adapters", headers=AUTH)
    assert response.status_code == 403 and response.json()["error"]["code"] == "admin_disabled"
