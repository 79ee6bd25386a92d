"""The router canary's review on a real shadow store: requests the shadow mirrored grade
themselves (the flywheel's rule) when no graded outcomes file covers them."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from prometheus_client import CollectorRegistry

from router.canary import prompt_key
from router.canary_loop import RouterCanary
from router.canary_store import RouterScore
from router.config import RoutingConfig
from router.registry import RouterState
from router.telemetry import RouterMetrics
from shadow.journal import ShadowPair, Journal


class Registry:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    def state(self) -> RouterState:
        return RouterState(active="act", candidate="cand")

    def activate(self, version, *, expected_candidate=None, reason=None):
        self.calls.append(("activate", version))

    def set_candidate(self, version, *, expected=None, reason=None):
        self.calls.append(("candidate", version))


def scored(store: Journal, i: int, active: str, candidate: str, agreement: float) -> None:
    text = f"question {i}"
    store.add_router_score(RouterScore(
        request_id=f"r{i}", prompt_key=prompt_key(text), active_version="act", candidate_version="cand",
        active_tier=active, candidate_tier=candidate, active_score=0.9, candidate_score=0.1,
    ))
    store.add_pair(ShadowPair(
        request_id=f"r{i}", primary_target="large", shadow_target="small:refund@v1", prompt=text,
        primary_text="a", shadow_text="b", primary_latency_s=1.0, shadow_latency_s=0.5, agreement=agreement,
    ))


def review(store: Journal, registry: Registry, config: RoutingConfig):
    versions = SimpleNamespace(active=SimpleNamespace(version="act"), candidate=SimpleNamespace(version="cand"))
    canary = RouterCanary(store, registry, versions, lambda: config, RouterMetrics(CollectorRegistry()).canary())  # type: ignore[arg-type]
    return asyncio.run(canary.review())


def test_mirrored_requests_grade_the_canary(tmp_path):
    store = Journal(tmp_path / "shadow.sqlite")
    # The active version sent all of these large; the small answers agreed with the large
    # ones, so small was fine: the candidate, which keeps them small, loses nothing.
    for i in range(10):
        scored(store, i, "large", "small", agreement=0.95)
    config = RoutingConfig.model_validate({"canary": {"min_samples": 10, "min_graded": 10, "max_share_drift": 1.0}})
    registry = Registry()
    verdict = review(store, registry, config)
    assert verdict.figures.graded == 10 and verdict.figures.candidate_quality == 1.0
    assert verdict.decision == "promote" and registry.calls == [("activate", "cand")]


def test_a_candidate_that_keeps_failing_queries_small_is_rejected(tmp_path):
    store = Journal(tmp_path / "shadow.sqlite")
    for i in range(10):
        scored(store, i, "large", "small", agreement=0.2)  # small's answers were off
    config = RoutingConfig.model_validate({"canary": {"min_samples": 10, "min_graded": 10, "max_share_drift": 1.0}})
    registry = Registry()
    verdict = review(store, registry, config)
    assert (verdict.figures.active_quality, verdict.figures.candidate_quality) == (1.0, 0.0)
    assert verdict.decision == "reject" and registry.calls == [("candidate", None)]
    off = RoutingConfig.model_validate({"canary": {"min_samples": 10, "min_graded": 10, "shadow_threshold": None}})
    assert review(store, Registry(), off).decision == "wait"  # nothing else grades them
