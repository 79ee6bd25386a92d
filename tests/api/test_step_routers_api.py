"""Step routers, in-process: the router trained on the outcomes of large and the tier above it
decides that climb once its registry has an active version (the own-pair loop for a third
tier: collect, grade, train, `router register --step`, activate), and the CLI keeps each
step's versions apart from the pair's."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from gateway.assembly import Routing, Tiers, build_gateway
from gateway.catalog import TierSpec
from gateway.settings import LimitSettings
from router.cli import app as router_cli
from router.context import RouterContext
from router.loading import EmbedderCache, load_router
from router.registry import RouterRegistry, step_registries
from tests.support.fake_engine import FakeEngine
from tests.support.router_models import EASY, HARD, outcomes_csv, train_tiny_router

CHAT = "/v1/chat/completions"
ORDER = ("small", "large", "frontier")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("step-routers")
    data = outcomes_csv(tmp / "outcomes.csv", seed=1)  # hard prompts: the upper tier's answer is better
    return {
        "step": train_tiny_router(tmp / "step", data, version="step", pair=("large", "frontier")),
        "pair": train_tiny_router(tmp / "pair", data, version="pair"),
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
