"""Router versions live, in-process: a registered version serves `auto` on the next poll
(header and metric by version), a model of another pair is refused over the admin API, and
the router canary promotes a better candidate and rejects one trained on shuffled outcomes.

Real router models (tiny, trained here on generated rows) behind fake engines.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from gateway.assembly import Edge, Features, Routing, ShadowParts, Tiers, build_gateway
from gateway.catalog import TierSpec
from gateway.settings import AdminSettings, LimitSettings
from router.loading import EmbedderCache, load_router
from router.registry import RouterRegistry
from shadow.journal import Journal
from tests.support.fake_engine import FakeEngine
from tests.support.agreement import Same
from tests.support.waiting import wait_for
from tests.support.router_models import outcomes_csv, train_tiny_router

CHAT = "/v1/chat/completions"
ADMIN = "admin-secret"
AS_ADMIN = {"authorization": f"Bearer {ADMIN}"}



@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("router-versions")
    good = train_tiny_router(tmp / "good", outcomes_csv(tmp / "good.csv", seed=1), version="good")
    other = train_tiny_router(tmp / "other", outcomes_csv(tmp / "other.csv", seed=2), version="other")
    bad = train_tiny_router(tmp / "bad", outcomes_csv(tmp / "bad.csv", seed=1, shuffled=True), version="bad")
    return {"good": good, "other": other, "bad": bad, "outcomes": tmp / "good.csv"}


@pytest.fixture
def registry(tmp_path) -> RouterRegistry:
    return RouterRegistry(tmp_path / "registry")


@pytest.fixture
def gateway(tmp_path, registry):
    engines = {"small": FakeEngine("tiny", max_model_len=256), "large": FakeEngine("big", max_model_len=256)}
    tiers = {"small": TierSpec(served_name="tiny", max_model_len=256),
             "large": TierSpec(served_name="big", max_model_len=256)}
    embedders = EmbedderCache()
    routing = Routing(
        scorer=lambda text, category, asks: 0.0, version="started-with", registry=registry,
        loader=lambda path, version: load_router(path, version, embedders), poll_s=0.05,
        canary_interval_s=0.1,
    )
    store = Journal(tmp_path / "shadow.sqlite")
    return build_gateway(Tiers(engines, tiers), LimitSettings(), routing=routing, edge=Edge(admin=AdminSettings(api_key=SecretStr(ADMIN))), features=Features(shadow=ShadowParts(store, Same())))


@pytest.fixture
def client(gateway):
    with TestClient(gateway.app, raise_server_exceptions=False) as client:
        yield client


def auto(client, text="where is my order"):
    body = {"model": "auto", "messages": [{"role": "user", "content": text}], "max_tokens": 2}
    response = client.post(CHAT, json=body)
    assert response.status_code == 200, response.text
    return response



def test_a_registered_version_serves_auto_on_the_next_poll(client, gateway, registry, models):
    assert auto(client).headers["x-gateway-router-version"] == "started-with"
    version = registry.register(models["good"]).version
    registry.activate(version)  # as `router activate` does, from another process
    assert wait_for(lambda: auto(client).headers["x-gateway-router-version"] == version, 5.0, 0.05)
    sample = gateway.metrics.registry.get_sample_value
    assert sum(sample("gateway_router_version_decisions_total", {"version": version, "tier": t}) or 0
               for t in ("small", "large")) >= 1
    explicit = client.post(CHAT, json={"model": "small", "messages": [{"role": "user", "content": "x"}]})
    assert "x-gateway-router-version" not in explicit.headers  # only auto is routed


def test_admin_api_registers_activates_and_refuses_another_pair(client, registry, models, tmp_path):
    response = client.post("/admin/router", json={"path": str(models["good"]), "activate": True}, headers=AS_ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["active"] == body["serving"] and body["serving"].startswith("router-v1-")
    assert auto(client).headers["x-gateway-router-version"] == body["serving"]  # this replica at once

    import json
    import shutil
    foreign = tmp_path / "foreign"
    shutil.copytree(models["good"], foreign)
    manifest = json.loads((foreign / "manifest.json").read_text())
    manifest["tiers"] = {"small": "mixtral", "large": "gpt-4"}
    (foreign / "manifest.json").write_text(json.dumps(manifest))
    refused = client.post("/admin/router", json={"path": str(foreign)}, headers=AS_ADMIN)
    assert refused.status_code == 400 and "routes between" in refused.json()["error"]["message"]
    assert client.get("/admin/router").status_code == 401
    listed = client.get("/admin/router", headers=AS_ADMIN).json()
    assert [v["version"] for v in listed["versions"]] == [body["serving"]]
    assert client.post("/admin/router/activate", json={"version": "router-v7-2026-01-01"}, headers=AS_ADMIN).status_code == 404
    rolled = client.post("/admin/router/rollback", headers=AS_ADMIN).json()
    assert rolled["active"] is None and rolled["serving"] == "started-with"


def prompts(path: Path) -> list[str]:
    with path.open() as handle:
        return [row["prompt"] for row in csv.DictReader(handle)]


def canary_config(gateway, outcomes: Path) -> None:
    # A fixed probability cut: the started-with scorer (always 0.0) sends everything small.
    assert gateway.reconfigure({"routing": {
        "learned": {"thresholds": {"mode": "probability", "probability": 0.3}},
        "canary": {"min_samples": 40, "min_graded": 40, "max_share_drift": 0.5, "outcomes_file": str(outcomes)},
    }})


def replay(client, texts, until, timeout_s=180.0):  # generous: a busy 2-core box is slow
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for text in texts:
            auto(client, text)
            if until():
                return True
    return False


def test_canary_promotes_a_better_candidate_and_rejects_a_shuffled_one(client, gateway, registry, models):
    canary_config(gateway, models["outcomes"])
    texts = prompts(models["outcomes"])
    good = registry.register(models["good"]).version
    registry.set_candidate(good)  # against the started-with model, which sends everything small
    store = gateway.shadow.store
    assert replay(client, texts, lambda: registry.state().active == good), (
        registry.state(), [r.model_dump() for r in store.router_scores("started-with", good)][:5])
    assert wait_for(lambda: store.events(subject=good), 20, 0.05)  # written just after the activation
    promoted = {e.kind: e for e in store.events(subject=good)}["router_canary_promoted"]
    assert promoted.detail["candidate_quality"] > promoted.detail["active_quality"], promoted.detail

    bad = registry.register(models["bad"]).version
    registry.set_candidate(bad)
    assert replay(client, texts, lambda: registry.state().candidate is None), registry.state()
    assert registry.state().active == good  # the shuffled one never served
    assert wait_for(lambda: store.events(subject=bad), 20, 0.05)
    rejected = {e.kind: e for e in store.events(subject=bad)}["router_canary_rejected"]
    detail = rejected.detail  # worse, or bought with a larger large share (more cost: a share
    # drift past max_share_drift, where sending nearly everything large grades best)
    worse = detail["candidate_quality"] < detail["active_quality"]
    costlier = detail["candidate_large_share"] > detail["active_large_share"] and (
        detail["candidate_quality"] == detail["active_quality"] or "drift" in detail["reason"])
    assert worse or costlier, detail
    sample = gateway.metrics.registry.get_sample_value
    assert sample("gateway_router_canary_decisions_total", {"decision": "promote"}) == 1
    # The event is stored before the counter moves (both on the canary's thread): wait for it.
    assert wait_for(lambda: sample("gateway_router_canary_decisions_total", {"decision": "reject"}) == 1, 20, 0.05)
