"""The admin API's answer when the probe-load on the small tier fails, by cause:
an adapter vLLM refuses is 400 invalid_adapter, a dead or unreachable engine is 503,
any other engine failure is 500. The active version keeps serving in every case."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient
from vllm.v1.engine.exceptions import EngineDeadError

from adapters.registry import AdapterRegistry
from engines.errors import EngineError, EngineRequestError, EngineUnavailable
from engines.types import AdapterReport
from engines.vllm_engine import EngineSpec, SchedulerState, VLLMEngine
from adapters.directory import AdapterDirectory
from gateway.assembly import AdapterParts, Edge, Features, Tiers, build_gateway
from gateway.catalog import TierSpec
from gateway.settings import AdminSettings, LimitSettings
from tests.support.adapters import BASE, make_adapter
from tests.support.vllm_stub import StubAsyncLLM

AUTH = {"authorization": "Bearer admin-secret"}
NEW = "refund-v2-2026-11-02"


class Fleet:
    """One small-tier replica: the probe goes to `probe_engine`, as HandleEngine would."""

    def __init__(self, registry: AdapterRegistry, probe_engine=None, error: EngineError | None = None) -> None:
        self.registry, self.probe_engine, self.error = registry, probe_engine, error

    async def probe(self, adapter) -> None:
        if self.error is not None:
            raise self.error
        await self.probe_engine.add_adapter(adapter)

    async def reports(self):
        return {"replica-1": AdapterReport(generation=self.registry.state().generation)}


@pytest.fixture
def registry(tmp_path):
    registry = AdapterRegistry(tmp_path / "registry", base=BASE)
    registry.register(make_adapter(tmp_path / "src", "refund", "refund-v1-2026-11-01"), activate=True)
    return registry


def admin(engines, registry, fleet):
    tiers = {
        "small": TierSpec(served_name="tiny", max_model_len=64),
        "large": TierSpec(served_name="big", max_model_len=128),
    }
    directory = AdapterDirectory(registry, None, "minilm", 0.9)
    gateway = build_gateway(Tiers(engines, tiers), LimitSettings(max_body_bytes=4096), edge=Edge(admin=AdminSettings(api_key=SecretStr("admin-secret"))), features=Features(adapters=AdapterParts(directory, fleet)))
    return TestClient(gateway.app, raise_server_exceptions=False)


def load_new(engines, registry, tmp_path, fleet):
    path = make_adapter(tmp_path / "incoming", "refund", NEW)
    with admin(engines, registry, fleet) as client:
        response = client.post("/admin/adapters", json={"path": str(path), "activate": True}, headers=AUTH)
    assert registry.state().domains["refund"].active == "refund-v1-2026-11-01"  # still serving
    return response


def vllm_engine(stub: StubAsyncLLM) -> VLLMEngine:
    return VLLMEngine(stub, EngineSpec(model="m", served_name="tiny", enable_lora=True), SchedulerState())


def test_dead_engine_is_503_not_invalid_adapter(engines, registry, tmp_path):
    fleet = Fleet(registry, vllm_engine(StubAsyncLLM(EngineDeadError(), dead=True)))
    response = load_new(engines, registry, tmp_path, fleet)
    assert response.status_code == 503, response.text
    assert response.json()["error"]["type"] == "service_unavailable"


def test_adapter_vllm_refuses_is_400_invalid_adapter(engines, registry, tmp_path):
    stub = StubAsyncLLM(ValueError("LoRA rank 64 is greater than max_lora_rank 16."))
    response = load_new(engines, registry, tmp_path, Fleet(registry, vllm_engine(stub)))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_adapter" and "max_lora_rank" in response.text


@pytest.mark.parametrize("error, status", [
    (EngineUnavailable("replica unavailable (ActorDiedError)"), 503),
    (EngineRequestError("could not load adapter", param="model"), 400),
    (EngineError("RuntimeError: CUDA error: an illegal memory access"), 500),
])
def test_probe_failure_status_by_engine_error(engines, registry, tmp_path, error, status):
    response = load_new(engines, registry, tmp_path, Fleet(registry, error=error))
    assert response.status_code == status, response.text
    if status != 400:
        assert response.json()["error"]["code"] != "invalid_adapter"
