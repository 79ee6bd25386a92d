from adapters.registry import AdapterRegistry
from deployments.adapter_sync import AdapterSync
from tests.support.adapters import BASE, make_adapter
from tests.support.fake_engine import FakeEngine


async def test_replica_converges_on_the_served_set(tmp_path):
    registry = AdapterRegistry(tmp_path / "r", base=BASE)
    registry.register(make_adapter(tmp_path / "src", "refund", "refund-v1-2026-11-01"), activate=True)
    engine = FakeEngine()
    sync = AdapterSync(registry, engine, interval_s=0.01)
    assert await sync.sync_once()  # a replica starting later loads the active set
    assert set(engine.loaded) == {"refund-v1-2026-11-01"}
    assert not await sync.sync_once()  # same generation: nothing to do
    registry.register(make_adapter(tmp_path / "src", "refund", "refund-v2-2026-11-02"), activate=True)
    await sync.sync_once()
    assert "refund-v2-2026-11-02" in engine.loaded
    assert sync.report.generation == registry.state().generation


async def test_failed_load_is_reported(tmp_path):
    registry = AdapterRegistry(tmp_path / "r", base=BASE)
    registry.register(make_adapter(tmp_path / "src", "refund", "refund-v1-2026-11-01"), activate=True)
    engine = FakeEngine()
    engine.bad_adapters.add("refund-v1-2026-11-01")
    sync = AdapterSync(registry, engine, interval_s=0.01)
    await sync.sync_once()
    assert [f.name for f in sync.report.failed] == ["refund-v1-2026-11-01"]
