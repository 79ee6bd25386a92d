"""Step routers, in-process: the router trained on the outcomes of large and the tier above it
decides that climb once its registry has an active version (the own-pair loop for a third
tier: collect, grade, train, `router register --step`, activate), and the CLI keeps each
step's versions apart from the pair's."""

from __future__ import annotations

import csv
import time

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from gateway.assembly import Features, Routing, ShadowParts, Tiers, build_gateway
from gateway.catalog import TierSpec
from gateway.settings import LimitSettings
from router.cli import app as router_cli
from router.context import RouterContext
from router.loading import EmbedderCache, load_router
from router.registry import RouterRegistry, step_registries
from shadow.journal import Journal
from tests.support.fake_engine import FakeEngine
from tests.support.agreement import Same
from tests.support.waiting import wait_for
from tests.support.router_models import EASY, HARD, outcomes_csv, train_tiny_router

CHAT = "/v1/chat/completions"
ORDER = ("small", "large", "frontier")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("step-routers")
    data = outcomes_csv(tmp / "outcomes.csv", seed=1)  # hard prompts: the upper tier's answer is better
    shuffled = outcomes_csv(tmp / "shuffled.csv", seed=1, shuffled=True)
    graded = tmp / "graded.csv"  # the step's outcomes: large's scores and frontier's
    lines = data.read_text().splitlines()
    graded.write_text("\n".join(["prompt,category,score:large,score:frontier", *lines[1:]]) + "\n")
    return {
        "step": train_tiny_router(tmp / "step", data, version="step", pair=("large", "frontier")),
        "bad": train_tiny_router(tmp / "bad", shuffled, version="bad", pair=("large", "frontier")),
        "pair": train_tiny_router(tmp / "pair", data, version="pair"),
        "graded": graded,
    }


@pytest.fixture
def steps(tmp_path):
    return step_registries(tmp_path / "steps", ORDER)


@pytest.fixture
def client(steps):
    engines = {tier: FakeEngine(tier) for tier in ORDER}
    tiers = {tier: TierSpec(served_name=f"{tier}-model", max_model_len=256) for tier in ORDER}
    embedders = EmbedderCache()
    routing = Routing(
        scorer=lambda text, category, asks: 0.9, version="pair", registry=RouterRegistry(steps["frontier"].root.parent / "pair"),
        loader=lambda path, version: load_router(path, version, embedders), poll_s=0.05, steps=steps,
    )
    gateway = build_gateway(Tiers(engines, tiers), LimitSettings(), routing=routing)
    assert gateway.reconfigure({"routing": {"learned": {
        "thresholds": {"mode": "probability", "probability": 0.5}, "queue": {"enabled": False},
        "upper": {"frontier": {"mode": "probability", "probability": 0.5, "queue": {"enabled": False}}},
    }}})
    with TestClient(gateway.app, raise_server_exceptions=False) as client:
        yield client




def tier(client, text: str) -> str:
    body = {"model": "auto", "messages": [{"role": "user", "content": text}], "max_tokens": 2}
    response = client.post(CHAT, json=body)
    assert response.status_code == 200, response.text
    return response.headers["x-gateway-tier"]


def test_an_active_step_router_decides_the_climb_to_its_tier(client, steps, models):
    easy, hard = EASY[0], HARD[1]  # the tiny step router scores them 0.2 and 0.81
    assert (tier(client, easy), tier(client, hard)) == ("frontier", "frontier")  # the pair score (0.9) climbs both
    registry = steps["frontier"]
    registry.activate(registry.register(models["step"]).version)
    deadline = time.monotonic() + 10
    while tier(client, easy) != "large" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (tier(client, easy), tier(client, hard)) == ("large", "frontier")
    registry.rollback()  # none active: the pair's score decides again
    deadline = time.monotonic() + 10
    while tier(client, easy) != "frontier" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tier(client, easy) == "frontier"


def test_the_cli_registers_a_step_router_only_in_its_steps_registry(steps, models, tmp_path):
    context = RouterContext(registry=RouterRegistry(tmp_path / "pair"), steps=steps)

    def run(*args):
        return CliRunner().invoke(router_cli, list(args), obj=context)

    assert run("register", str(models["step"]), "--step", "frontier", "--activate").exit_code == 0
    refused = run("register", str(models["pair"]), "--step", "frontier")
    assert refused.exit_code == 2 and "trained on the outcomes of" in refused.output
    assert run("register", str(models["step"])).exit_code == 2  # not the pair's registry
    listed = run("list", "--step", "frontier")
    assert listed.exit_code == 0 and listed.output.startswith("active router-v1-")
    unknown = run("list", "--step", "giant")
    assert unknown.exit_code == 2 and "no tier 'giant' above large" in unknown.output


def three_tiers(tmp_path, steps, **parts):
    """Three fake tiers whose pair router scores every query 0.5, and the step registries."""
    engines = {tier: FakeEngine(tier) for tier in ORDER}
    tiers = {tier: TierSpec(served_name=f"{tier}-model", max_model_len=256) for tier in ORDER}
    embedders = EmbedderCache()
    routing = Routing(
        scorer=lambda text, category, asks: 0.5, version="pair", registry=RouterRegistry(tmp_path / "pair"),
        loader=lambda path, version: load_router(path, version, embedders), poll_s=0.05, steps=steps,
        canary_interval_s=0.1,
    )
    return build_gateway(Tiers(engines, tiers), LimitSettings(), routing=routing, **parts)


@pytest.fixture
def canaried(tmp_path, steps, models):
    """With a shadow store: 0.5 is enough for large (0.3) and short of frontier (0.6), so
    without a step router nothing climbs to frontier."""
    shadow = ShadowParts(Journal(tmp_path / "shadow.sqlite"), Same())
    gateway = three_tiers(tmp_path, steps, features=Features(shadow=shadow))
    canary = {"min_samples": 40, "min_graded": 40, "max_share_drift": 0.6, "outcomes_file": str(models["graded"])}
    assert gateway.reconfigure({"routing": {"learned": {
        "thresholds": {"mode": "probability", "probability": 0.3}, "queue": {"enabled": False},
        "upper": {"frontier": {"mode": "probability", "probability": 0.6, "queue": {"enabled": False}, "canary": canary}},
    }}})
    with TestClient(gateway.app, raise_server_exceptions=False) as client:
        yield gateway, client


def test_the_step_canary_promotes_a_step_router_and_rejects_a_shuffled_one(canaried, steps, models):
    gateway, client = canaried
    texts = [row["prompt"] for row in csv.DictReader(models["graded"].open())]
    registry, store = steps["frontier"], gateway.shadow.store

    def replay(until) -> bool:
        deadline = time.monotonic() + 180  # generous: a busy 2-core box is slow
        while time.monotonic() < deadline:
            for text in texts:
                tier(client, text)
                if until():
                    return True
        return False

    good = registry.register(models["step"]).version
    registry.set_candidate(good)  # against no step router: the pair's score keeps every query on large
    assert replay(lambda: registry.state().active == good), registry.state()
    assert wait_for(lambda: store.events(subject=good), 20, 0.05)
    promoted = {e.kind: e for e in store.events(subject=good)}["router_step_canary_promoted"].detail
    assert promoted["tier"] == "frontier" and promoted["against"] == "none"
    assert promoted["candidate_quality"] > promoted["active_quality"], promoted
    assert wait_for(lambda: tier(client, HARD[1]) == "frontier", 20, 0.05)  # the promoted step router climbs

    bad = registry.register(models["bad"]).version
    registry.set_candidate(bad)
    assert replay(lambda: registry.state().candidate is None), registry.state()
    assert registry.state().active == good  # the shuffled one never served
    assert wait_for(lambda: store.events(subject=bad), 20, 0.05)
    rejected = {e.kind: e for e in store.events(subject=bad)}["router_step_canary_rejected"].detail
    assert rejected["against"] == good and rejected["candidate_quality"] <= rejected["active_quality"], rejected
    sample = gateway.metrics.registry.get_sample_value
    assert sample("gateway_router_step_canary_decisions_total", {"tier": "frontier", "decision": "promote"}) == 1
    assert wait_for(lambda: sample("gateway_router_step_canary_decisions_total", {"tier": "frontier", "decision": "reject"}) == 1, 20, 0.05)
    assert sample("gateway_router_canary_decisions_total", {"decision": "promote"}) is None  # the pair's canary: untouched


def test_the_cli_sets_a_step_candidate(steps, models, tmp_path):
    context = RouterContext(registry=RouterRegistry(tmp_path / "pair"), steps=steps)
    version = steps["frontier"].register(models["step"]).version
    result = CliRunner().invoke(router_cli, ["candidate", version, "--step", "frontier"], obj=context)
    assert result.exit_code == 0, result.output
    assert steps["frontier"].state().candidate == version
    assert RouterRegistry(tmp_path / "pair").state().candidate is None


def test_the_admin_api_serves_each_steps_registry(steps, models, tmp_path):
    from pydantic import SecretStr

    from gateway.assembly import Edge
    from gateway.settings import AdminSettings

    admin = {"authorization": "Bearer admin-secret"}
    gateway = three_tiers(tmp_path, steps, edge=Edge(admin=AdminSettings(api_key=SecretStr("admin-secret"))))
    with TestClient(gateway.app, raise_server_exceptions=False) as client:
        path = "/admin/router/steps/frontier"
        assert client.post(path, json={"path": str(models["step"]), "candidate": True}).status_code == 401
        body = client.post(path, json={"path": str(models["step"]), "activate": True}, headers=admin).json()
        assert body["active"] == body["serving"] and body["serving"].startswith("router-v1-")
        refused = client.post(path, json={"path": str(models["pair"])}, headers=admin)
        assert refused.status_code == 400 and "trained on the outcomes of" in refused.json()["error"]["message"]
        assert steps["frontier"].state().active == body["active"]
        assert client.get("/admin/router", headers=admin).json()["active"] is None  # the pair's: untouched
        rolled = client.post(f"{path}/rollback", headers=admin).json()
        assert rolled["active"] is None and rolled["serving"] is None
