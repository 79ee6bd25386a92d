"""Issue 25's regressions on the one request path (in-process, fake engines):

- a category is one value everywhere: `Billing`, ` billing ` and `billing` reach the same
  router override, shadow rule, rollout mode and grounding domain;
- what a request asks for is validated before routing: a refused `grounding` or `gate`
  costs no routing decision (and no admission);
- a shadow request goes through the dispatch: the breaker, and request metrics
  labelled `shadow`.
"""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from gateway.assembly import Edge, Features, ShadowParts, Tiers, build_gateway
from gateway.catalog import TierSpec
from gateway.live_config import LiveConfig
from gateway.metrics import GatewayMetrics
from gateway.settings import LimitSettings
from retrieval.config import GroundingConfig
from retrieval.grounding import Grounder
from router.loading import LoadedRouter
from shadow.journal import Journal
from support.wiring import SupportParts
from tests.support.fake_engine import FakeEngine
from tests.support.retrieval import ScriptedReranker, first_stage

CHAT = "/v1/chat/completions"
TIERS = {"small": TierSpec(served_name="tiny", max_model_len=4096),
         "large": TierSpec(served_name="big", max_model_len=4096)}
SPELLINGS = ["billing", "Billing", " billing ", "BILLING"]


class Same:
    def score(self, a: str, b: str) -> float:
        return float(a == b)


def engines() -> dict[str, FakeEngine]:
    return {"small": FakeEngine("tiny", max_model_len=4096), "large": FakeEngine("big", max_model_len=4096)}


def ask(client, category: str | None = None, model: str = "auto", **extra):
    body = {"model": model, "messages": [{"role": "user", "content": "How do I get a refund?"}],
            "max_tokens": 4, **extra}
    if category is not None:
        body["metadata"] = {"category": category}
    return client.post(CHAT, json=body)


def wait_for(predicate, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def rig(tmp_path):
    metrics = GatewayMetrics()
    store = Journal(tmp_path / "shadow.sqlite")
    grounder = Grounder(first_stage(tmp_path), ScriptedReranker(lambda p: 0.0), metrics.grounding)
    config = LiveConfig.parse({
        "routing": {"policy": "learned", "learned": {"thresholds": {
            "mode": "probability", "category_overrides": {"Billing": "large"}}}},
        "shadow": {"rules": [{"category": "BILLING ", "target": "small", "sample_rate": 1.0}]},
        "support": {"rollout": {"categories": {" Billing": "draft"}}},
        "grounding": {"domains": ["billing"], "rerank": "off", "top_k": 1},
    })
    gateway = build_gateway(Tiers(engines(), TIERS), LimitSettings(), config=config, features=Features(shadow=ShadowParts(store, Same()), grounder=grounder, support=SupportParts()), edge=Edge(metrics=metrics))
    gateway.policies.use(LoadedRouter("test", lambda text, category, asks: 0.0))
    gateway.apply(gateway.config)
    return gateway, store


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_category_is_one_value_for_every_feature(rig, spelling):
    gateway, store = rig
    with TestClient(gateway.app) as client:
        r = ask(client, spelling)
        assert r.status_code == 200, r.text
        assert r.headers["x-gateway-tier"] == "large"  # the router override
        assert r.headers["x-gateway-route-reason"] == "learned:category_override"
        assert r.headers["x-gateway-mode"] == "draft"  # the rollout mode
        assert r.headers["x-gateway-context"] == "first-stage"  # the grounding domain
        rid = r.headers["x-request-id"]
        assert wait_for(lambda: bool(store.pairs_of([rid])))  # the shadow rule


def test_an_unknown_category_reaches_none_of_them(rig):
    gateway, store = rig
    with TestClient(gateway.app) as client:
        r = ask(client, "orders")
        assert r.status_code == 200
        assert r.headers["x-gateway-route-reason"] != "learned:category_override"
        assert r.headers["x-gateway-mode"] == "auto"
        assert "x-gateway-context" not in r.headers


def decisions(metrics: GatewayMetrics) -> float:
    return sum(
        sample.value for family in metrics.registry.collect() if family.name == "gateway_routing_decisions"
        for sample in family.samples if sample.name.endswith("_total")
    )


@pytest.mark.parametrize("field,code", [("grounding", "grounding_unavailable"), ("gate", "gate_unavailable")])
def test_a_request_for_what_is_not_there_is_refused_before_routing(field, code):
    metrics = GatewayMetrics()
    gateway = build_gateway(Tiers(engines(), TIERS), LimitSettings(), edge=Edge(metrics=metrics))
    with TestClient(gateway.app) as client:
        r = ask(client, **{field: True})
        assert r.status_code == 400
        assert r.json()["error"]["param"] == field and r.json()["error"]["code"] == code
        assert decisions(metrics) == 0  # no routing decision was made for it
        assert ask(client).status_code == 200 and decisions(metrics) == 1


def test_a_shadow_request_goes_through_the_breaker_and_is_counted_as_shadow(tmp_path):
    metrics = GatewayMetrics()
    tiers = engines()
    tiers["large"].unavailable_for = -1  # every call fails as if the replica were gone
    store = Journal(tmp_path / "shadow.sqlite")
    config = LiveConfig.parse({
        "shadow": {"rules": [{"tier": "small", "target": "large", "sample_rate": 1.0}]},
        "resilience": {"retries": 0, "breaker": {"failure_threshold": 2, "reset_after_s": 60}},
    })
    gateway = build_gateway(Tiers(tiers, TIERS), LimitSettings(), config=config, features=Features(shadow=ShadowParts(store, Same())), edge=Edge(metrics=metrics))

    def shadow_requests(status: str) -> float:
        labels = {"endpoint": "shadow", "tier": "large", "status": status}
        return metrics.registry.get_sample_value("gateway_requests_total", labels) or 0.0

    with TestClient(gateway.app) as client:
        for _ in range(4):
            assert ask(client, model="small").status_code == 200
        assert wait_for(lambda: shadow_requests("503") == 4)
    # The breaker opened after two failures: the last two never reached the engine.
    assert tiers["large"].calls == 2
    assert metrics.registry.get_sample_value("gateway_breaker_state", {"tier": "large"}) == 2
