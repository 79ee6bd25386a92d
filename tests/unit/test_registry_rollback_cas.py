"""A rollback names the version it undoes; one activated since that decision is left alone."""

import logging

import pytest

from adapters.errors import StaleRollback
from adapters.registry import AdapterRegistry
from shadow.canary import CanaryMonitor
from shadow.config import CanaryConfig
from shadow.journal import ShadowPair, Journal
from tests.support.adapters import BASE, make_adapter

DOMAIN = "refund"
V1, V2, V3 = "refund-v1-2026-11-01", "refund-v2-2026-11-02", "refund-v3-2026-11-03"


@pytest.fixture
def registry(tmp_path):
    registry = AdapterRegistry(tmp_path / "registry", base=BASE, max_rank=16)
    for version in (V1, V2, V3):
        registry.register(make_adapter(tmp_path / "src", DOMAIN, version))
    registry.activate(DOMAIN, V1)
    registry.activate(DOMAIN, V2)
    return registry


def test_rollback_of_a_version_no_longer_active_changes_nothing(registry):
    # V2 was judged (and found worse); meanwhile V3 was activated.
    registry.activate(DOMAIN, V3)
    before = registry.state()
    with pytest.raises(StaleRollback, match=f"no longer runs {V2}"):
        registry.rollback(DOMAIN, expected_active=V2)
    assert registry.state() == before  # same active version, history and generation


def test_rollback_of_the_expected_version_goes_ahead(registry):
    state = registry.rollback(DOMAIN, expected_active=V2)
    assert state.domains[DOMAIN].active == V1
    assert state.domains[DOMAIN].history[-1].event == "rolled_back"


def add_pairs(store, version, agreement, n, start):
    for i in range(start, start + n):
        store.add_pair(ShadowPair(
            request_id=f"q{i}", primary_target=f"small:{DOMAIN}@{version}", shadow_target="large",
            prompt="p", primary_text="a", shadow_text="b", primary_latency_s=1, shadow_latency_s=2,
            agreement=agreement,
        ))


def test_canary_does_not_roll_back_a_version_activated_after_its_verdict(registry, tmp_path, monkeypatch, caplog):
    store = Journal(tmp_path / "shadow.sqlite")
    add_pairs(store, V1, 0.8, 10, start=0)
    add_pairs(store, V2, 0.2, 10, start=100)  # V2 is clearly worse than V1: a rollback verdict
    decisions = []
    monitor = CanaryMonitor(store, registry, on_decision=lambda d, v, dec: decisions.append((d, v, dec)))
    other_replica = AdapterRegistry(registry.root, base=BASE, max_rank=16)
    real_rollback = registry.rollback

    def rollback_after_a_concurrent_activation(domain, version=None, **kwargs):
        other_replica.activate(DOMAIN, V3)  # lands between the verdict and the rollback
        return real_rollback(domain, version, **kwargs)

    monkeypatch.setattr(registry, "rollback", rollback_after_a_concurrent_activation)
    with caplog.at_level(logging.INFO, logger="shadow.canary"):
        verdict = monitor.review(DOMAIN, CanaryConfig(min_samples=5, min_feedback=3))

    assert verdict.decision == "rollback"  # the verdict on V2 stands...
    assert registry.state().domains[DOMAIN].active == V3  # ...but V3, unjudged, stays active
    assert store.events() == [] and decisions == []
    assert any(r.levelno == logging.INFO and "nothing to roll back" in r.getMessage() for r in caplog.records)
