from datetime import datetime, timedelta, timezone

import pytest

from adapters.errors import (
    AdapterNotFound,
    EvaluationFailed,
    IncompatibleAdapter,
    InvalidAdapter,
    RollbackUnavailable,
)
from adapters.registry import AdapterRegistry
from tests.support.adapters import BASE, make_adapter


@pytest.fixture
def registry(tmp_path):
    return AdapterRegistry(tmp_path / "registry", base=BASE, max_rank=16)


@pytest.fixture
def src(tmp_path):
    return tmp_path / "src"


def test_register_activate_bumps_generation(registry, src):
    registry.register(make_adapter(src, "refund", "refund-v1-2026-11-01"))
    state = registry.activate("refund", "refund-v1-2026-11-01")
    assert state.domains["refund"].active == "refund-v1-2026-11-01"
    assert registry.state().generation == 2  # registered, then activated
    assert [r.version for r in registry.served()] == ["refund-v1-2026-11-01"]


def test_next_version_counts_per_domain(registry, src):
    registry.register(make_adapter(src, "refund", "refund-v1-2026-11-01"))
    registry.register(make_adapter(src, "order", "order-v1-2026-11-01"))
    assert registry.next_version("refund", datetime(2026, 11, 21).date()) == "refund-v2-2026-11-21"


def test_rollback_returns_to_previous_active(registry, src):
    for n in (1, 2):
        registry.register(make_adapter(src, "refund", f"refund-v{n}-2026-11-01"))
        registry.activate("refund", f"refund-v{n}-2026-11-01")
    state = registry.rollback("refund")
    assert state.domains["refund"].active == "refund-v1-2026-11-01"
    assert state.domains["refund"].history[-1].event == "rolled_back"


def test_rollback_outside_retention_is_refused(tmp_path, src):
    old = datetime.now(timezone.utc) - timedelta(days=40)
    registry = AdapterRegistry(tmp_path / "r", base=BASE, retention=timedelta(days=30))
    registry.register(make_adapter(src, "refund", "refund-v1-2026-10-01", created_at=old))
    registry.register(make_adapter(src, "refund", "refund-v2-2026-11-10"))
    registry.activate("refund", "refund-v1-2026-10-01")
    registry.activate("refund", "refund-v2-2026-11-10")
    with pytest.raises(RollbackUnavailable, match="rollback window"):
        registry.rollback("refund")
    assert registry.state().domains["refund"].active == "refund-v2-2026-11-10"


def test_rollback_without_history(registry, src):
    registry.register(make_adapter(src, "refund", "refund-v1-2026-11-01"))
    registry.activate("refund", "refund-v1-2026-11-01")
    with pytest.raises(RollbackUnavailable):
        registry.rollback("refund")


def test_corrupt_weights_refused_and_active_kept(registry, src):
    registry.register(make_adapter(src, "refund", "refund-v1-2026-11-01"))
    registry.activate("refund", "refund-v1-2026-11-01")
    bad = make_adapter(src, "refund", "refund-v2-2026-11-02")
    (bad / "adapter_model.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(InvalidAdapter, match="corrupt"):
        registry.register(bad)
    assert registry.state().domains["refund"].active == "refund-v1-2026-11-01"


@pytest.mark.parametrize("missing", ["adapter_config.json", "adapter_model.safetensors", "manifest.json"])
def test_missing_files_refused(registry, src, missing):
    path = make_adapter(src, "refund", "refund-v1-2026-11-01")
    (path / missing).unlink()
    with pytest.raises(InvalidAdapter, match=missing):
        registry.register(path)


def test_missing_directory_refused(registry, tmp_path):
    with pytest.raises(InvalidAdapter, match="does not exist"):
        registry.register(tmp_path / "nope")


def test_wrong_base_model_refused(registry, src):
    other = BASE.model_copy(update={"name": "other", "hidden_size": 32})
    with pytest.raises(IncompatibleAdapter, match="trained on base model 'other'"):
        registry.register(make_adapter(src, "refund", "refund-v1-2026-11-01", hidden=32, base=other))


def test_rank_above_engine_maximum_refused(tmp_path, src):
    registry = AdapterRegistry(tmp_path / "r", base=BASE, max_rank=8)
    with pytest.raises(IncompatibleAdapter, match="rank 16 exceeds"):
        registry.register(make_adapter(src, "refund", "refund-v1-2026-11-01", rank=16))


def test_failed_evaluation_needs_force(registry, src):
    path = make_adapter(src, "refund", "refund-v1-2026-11-01", domain_loss=(1.5, 2.0))
    with pytest.raises(EvaluationFailed, match="does not improve"):
        registry.register(path)
    assert registry.register(path, force=True).forced


def test_unknown_domain_and_version(registry, src):
    with pytest.raises(AdapterNotFound):
        registry.activate("refund", "refund-v9-2026-11-01")
    with pytest.raises(AdapterNotFound):
        registry.unload("nothing")
    with pytest.raises(AdapterNotFound, match="valid domain"):
        registry.next_version("Bad Domain!")


def test_version_of_another_domain_refused(registry, src):
    registry.register(make_adapter(src, "order", "order-v1-2026-11-01"))
    with pytest.raises(AdapterNotFound, match="belongs to domain 'order'"):
        registry.activate("refund", "order-v1-2026-11-01")


def test_candidate_is_served_beside_active(registry, src):
    for n in (1, 2):
        registry.register(make_adapter(src, "refund", f"refund-v{n}-2026-11-01"))
    registry.activate("refund", "refund-v1-2026-11-01")
    registry.set_candidate("refund", "refund-v2-2026-11-01")
    assert {r.version for r in registry.served()} == {"refund-v1-2026-11-01", "refund-v2-2026-11-01"}
    registry.activate("refund", "refund-v2-2026-11-01")  # promotion clears the slot
    assert registry.state().domains["refund"].candidate is None


def test_unload_keeps_versions(registry, src):
    registry.register(make_adapter(src, "refund", "refund-v1-2026-11-01"))
    registry.activate("refund", "refund-v1-2026-11-01")
    registry.unload("refund")
    assert registry.served() == [] and len(registry.versions("refund")) == 1


def test_prune_removes_only_old_unused(tmp_path, src):
    old = datetime.now(timezone.utc) - timedelta(days=40)
    registry = AdapterRegistry(tmp_path / "r", base=BASE)
    registry.register(make_adapter(src, "refund", "refund-v1-2026-10-01", created_at=old))
    registry.register(make_adapter(src, "refund", "refund-v2-2026-10-02", created_at=old))
    registry.activate("refund", "refund-v2-2026-10-02")
    assert registry.prune() == ["refund-v1-2026-10-01"]


def test_register_and_activate_is_one_generation(registry, src):
    before = registry.state().generation
    registry.register(make_adapter(src, "refund", "refund-v1-2026-11-01"), activate=True)
    state = registry.state()
    assert state.generation == before + 1 and state.domains["refund"].active == "refund-v1-2026-11-01"


@pytest.mark.parametrize("version", ["../../x", "/abs", "..", ".hidden", "a/b", "x" * 65])
def test_manifest_version_that_is_not_a_plain_name_is_refused(registry, src, tmp_path, version):
    import json

    path = make_adapter(src, "refund", "refund-v1-2026-11-01")
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**manifest, "version": version}))
    with pytest.raises(InvalidAdapter, match="not a valid adapter version"):
        registry.register(path)
    assert not (tmp_path / "x").exists() and not (registry.root / "versions").exists()


@pytest.mark.parametrize("version", ["../../x", "/etc", "refund-v1/../../.."])
def test_state_changes_refuse_a_version_that_is_not_a_plain_name(registry, src, version):
    registry.register(make_adapter(src, "refund", "refund-v1-2026-11-01"))
    registry.activate("refund", "refund-v1-2026-11-01")
    for change in (registry.activate, registry.set_candidate, registry.rollback):
        with pytest.raises(InvalidAdapter, match="not a valid adapter version"):
            change("refund", version)
    assert registry.state().domains["refund"].active == "refund-v1-2026-11-01"
