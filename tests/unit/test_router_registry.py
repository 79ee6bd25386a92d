"""The router version registry: what it refuses at register time, and its state changes."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from router.errors import InvalidVersion, RollbackUnavailable, StaleChange, VersionNotFound, VersionRefused
from router.registry import RouterRegistry
from tests.support.router_models import outcomes_csv, train_tiny_router


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("router-registry")
    return train_tiny_router(tmp / "model", outcomes_csv(tmp / "outcomes.csv"))


@pytest.fixture
def model(trained, tmp_path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(trained, copy)
    return copy


def edit(model: Path, **changes) -> None:
    manifest = json.loads((model / "manifest.json").read_text())
    manifest.update(changes)
    (model / "manifest.json").write_text(json.dumps(manifest))


def test_register_copies_the_artifact_with_its_figures(model, tmp_path):
    registry = RouterRegistry(tmp_path / "reg")
    entry = registry.register(model, {"auc_large_better": 0.81})
    assert entry.version.startswith("router-v1-") and entry.tiers == {"small": "small", "large": "large"}
    assert entry.eval["auc_large_better"] == 0.81 and entry.schema_hash
    assert (registry.path_of(entry.version) / "manifest.json").exists()
    assert registry.state().active is None  # registered, not served
    assert registry.register(model).version.startswith("router-v2-")


def test_a_model_of_another_pair_is_refused_with_the_reason(model, tmp_path):
    edit(model, tiers={"small": "mistralai/Mixtral-8x7B-Instruct-v0.1", "large": "gpt-4-1106-preview"})
    with pytest.raises(VersionRefused, match="trained on the outcomes of .*Mixtral.*routes between"):
        RouterRegistry(tmp_path / "reg").register(model)
    edit(model, tiers=None)
    with pytest.raises(VersionRefused, match="another model pair"):
        RouterRegistry(tmp_path / "reg").register(model)


def test_adapter_targets_count_as_their_tier(model, tmp_path):
    edit(model, tiers={"small": "small:billing", "large": "large"})
    assert RouterRegistry(tmp_path / "reg").register(model).tiers["small"] == "small:billing"


def test_a_model_of_another_schema_is_refused(model, tmp_path):
    edit(model, schema_hash="0000000000000000")
    with pytest.raises(VersionRefused, match="Retrain it"):
        RouterRegistry(tmp_path / "reg").register(model)
    assert not (tmp_path / "reg" / "versions").exists()


def test_activate_candidate_rollback(model, tmp_path):
    registry = RouterRegistry(tmp_path / "reg")
    v1, v2 = registry.register(model).version, registry.register(model).version
    registry.activate(v1)
    generation = registry.state().generation
    registry.set_candidate(v2)
    with pytest.raises(VersionRefused):
        registry.set_candidate(v1)  # already active
    state = registry.activate(v2, expected_candidate=v2)
    assert (state.active, state.candidate) == (v2, None) and state.generation > generation
    assert registry.rollback().active == v1
    with pytest.raises(VersionNotFound):
        registry.activate("router-v9-2026-01-01")
    with pytest.raises(InvalidVersion):
        registry.entry("../../etc")


def test_rollback_without_an_earlier_version_goes_back_to_the_default_model(model, tmp_path):
    registry = RouterRegistry(tmp_path / "reg")
    registry.activate(registry.register(model).version)
    assert registry.rollback().active is None
    with pytest.raises(RollbackUnavailable):
        registry.rollback()


def test_compare_and_set_refuses_a_slot_that_moved(model, tmp_path):
    registry = RouterRegistry(tmp_path / "reg")
    v1, v2 = registry.register(model).version, registry.register(model).version
    registry.set_candidate(v1)
    registry.set_candidate(v2)  # ops replaced the candidate after the canary decided on v1
    with pytest.raises(StaleChange):
        registry.activate(v1, expected_candidate=v1)
    with pytest.raises(StaleChange):
        registry.set_candidate(None, expected=v1)
    assert registry.state().candidate == v2
    registry.activate(v2)
    with pytest.raises(StaleChange):
        registry.rollback(expected_active=v1)


def test_rollback_window_and_prune(model, tmp_path):
    now = [datetime(2026, 11, 1, tzinfo=timezone.utc)]
    registry = RouterRegistry(tmp_path / "reg", clock=lambda: now[0])
    v1, v2, v3 = (registry.register(model).version for _ in range(3))
    registry.activate(v1)
    registry.activate(v2)
    now[0] += timedelta(days=31)
    with pytest.raises(RollbackUnavailable, match="rollback window"):
        registry.rollback()
    assert registry.prune() == [v1, v3]  # v2 is active: kept
    assert [v.version for v in registry.versions()] == [v2]
