"""Canary verdicts (pure, table-driven) and the monitor acting on a real registry and store."""

import pytest

from adapters.registry import AdapterRegistry
from shadow.canary import CanaryMonitor, judge
from shadow.config import CanaryConfig
from shadow.journal import FeedbackRecord, RequestRecord, ShadowPair, Journal, Stats
from tests.support.adapters import BASE, make_adapter


@pytest.mark.parametrize(
    "incumbent, challenger, expected",
    [
        (Stats(n=19, mean=0.8), Stats(n=50, mean=0.1), "wait"),  # too few on one side
        (Stats(n=20, mean=0.8), Stats(n=20, mean=0.761), "pass"),  # 4.9 % lower: within the margin
        (Stats(n=20, mean=0.8), Stats(n=20, mean=0.759), "reject"),  # 5.1 % lower
        (Stats(n=20, mean=0.8), Stats(n=20, mean=0.9), "pass"),
    ],
)
def test_judge_on_agreement(incumbent, challenger, expected):
    assert judge(incumbent, challenger, min_samples=20, margin=0.05).decision == expected


def test_judge_on_feedback_once_enough_ratings():
    same = Stats(n=30, mean=0.8)
    good, bad = Stats(n=25, mean=0.9), Stats(n=25, mean=0.7)
    assert judge(same, same, 20, 0.05, good, bad, min_feedback=20).decision == "reject"
    assert judge(same, same, 20, 0.05, good, Stats(n=5, mean=0.0), min_feedback=20).decision == "pass"


DOMAIN = "refund"
GOOD, BAD, CANDIDATE = "refund-v1-2026-11-01", "refund-v2-2026-11-02", "refund-v3-2026-11-03"
CONFIG = CanaryConfig(min_samples=5, min_feedback=3)


@pytest.fixture
def registry(tmp_path):
    registry = AdapterRegistry(tmp_path / "registry", base=BASE, max_rank=16)
    for version in (GOOD, BAD, CANDIDATE):
        registry.register(make_adapter(tmp_path / "src", DOMAIN, version))
    registry.activate(DOMAIN, GOOD)
    return registry


@pytest.fixture
def store(tmp_path):
    return Journal(tmp_path / "shadow.sqlite")


def add_pairs(store, version, agreement, n, start=0, reference="large"):
    for i in range(start, start + n):
        store.add_pair(ShadowPair(
            request_id=f"q{i}", primary_target=f"small:{DOMAIN}@{version}", shadow_target=reference,
            prompt="p", primary_text="a", shadow_text="b", primary_latency_s=1, shadow_latency_s=2,
            agreement=agreement,
        ))


def test_promoted_version_that_degrades_is_rolled_back(registry, store):
    decisions = []
    monitor = CanaryMonitor(store, registry, on_decision=lambda d, v, dec: decisions.append((d, v, dec)))
    add_pairs(store, GOOD, 0.8, 10)
    registry.activate(DOMAIN, BAD)
    add_pairs(store, BAD, 0.5, 4, start=100)
    assert monitor.review(DOMAIN, CONFIG).decision == "wait"
    add_pairs(store, BAD, 0.5, 1, start=104)
    verdict = monitor.review(DOMAIN, CONFIG)
    assert verdict.decision == "rollback"
    assert registry.state().domains[DOMAIN].active == GOOD
    assert [(e.kind, e.subject, e.detail["against"]) for e in store.events()] == [("rolled_back", BAD, GOOD)]
    assert decisions == [(DOMAIN, BAD, "rollback")]
    # Reviewing again: the good version is active, its predecessor (the bad one) is worse: kept.
    assert monitor.review(DOMAIN, CONFIG).decision == "keep" and len(store.events()) == 1


def test_promoted_version_rated_worse_by_customers_is_rolled_back(registry, store):
    add_pairs(store, GOOD, 0.8, 10)
    registry.activate(DOMAIN, BAD)
    add_pairs(store, BAD, 0.8, 10, start=100)  # agrees as well as the good one...
    for i, (version, rating) in enumerate([(GOOD, 1)] * 3 + [(BAD, -1)] * 3):
        store.add_request(RequestRecord(request_id=f"f{i}", target=f"small:{DOMAIN}@{version}", prompt="p", draft="d"))
        store.add_feedback(FeedbackRecord(request_id=f"f{i}", rating=rating))
    assert CanaryMonitor(store, registry).review(DOMAIN, CONFIG).decision == "rollback"  # ...but is rated down
    assert registry.state().domains[DOMAIN].active == GOOD


def test_candidate_worse_on_the_same_requests_is_rejected(registry, store):
    registry.set_candidate(DOMAIN, CANDIDATE)
    add_pairs(store, GOOD, 0.8, 6)
    add_pairs(store, CANDIDATE, 0.6, 6)  # same request ids q0..q5
    verdict = CanaryMonitor(store, registry).review(DOMAIN, CONFIG)
    assert verdict.decision == "reject"
    assert registry.state().domains[DOMAIN].candidate is None
    assert registry.state().domains[DOMAIN].active == GOOD
    assert store.events()[0].kind == "canary_rejected"


def test_candidate_as_good_passes_once_and_stays(registry, store):
    registry.set_candidate(DOMAIN, CANDIDATE)
    add_pairs(store, GOOD, 0.8, 6)
    add_pairs(store, CANDIDATE, 0.79, 6)
    monitor = CanaryMonitor(store, registry)
    assert monitor.review(DOMAIN, CONFIG).decision == "pass"
    monitor.review(DOMAIN, CONFIG)
    assert [e.kind for e in store.events()] == ["canary_passed"]
    assert registry.state().domains[DOMAIN].candidate == CANDIDATE


def test_no_automatic_action_when_switched_off(registry, store):
    add_pairs(store, GOOD, 0.8, 10)
    registry.activate(DOMAIN, BAD)
    add_pairs(store, BAD, 0.2, 10, start=100)
    verdict = CanaryMonitor(store, registry).review(DOMAIN, CONFIG.model_copy(update={"auto_rollback": False}))
    assert verdict.decision == "rollback" and registry.state().domains[DOMAIN].active == BAD
    assert store.events() == []
