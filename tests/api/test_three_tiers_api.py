"""Three tiers through the HTTP edge (fake engines): `auto` picks the cheapest tier whose cut
the score does not clear above, among the tiers that can serve the request; the third tier is
pinnable, listed, priced, escalated to; a live config naming a tier that is not there is
refused, the last good one kept."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from engines.capabilities import ALL_CAPABILITIES
from gateway.assembly import Routing, Tiers, build_gateway
from gateway.catalog import TierSpec
from gateway.live_config import LiveConfig
from gateway.settings import LimitSettings
from tests.support.fake_engine import FakeEngine

CHAT = "/v1/chat/completions"
SCORES = {"easy": 0.1, "medium": 0.6, "hard": 0.9}
PRICES = {
    "small": {"input_per_million": 1.0, "output_per_million": 2.0},
    "large": {"input_per_million": 10.0, "output_per_million": 20.0},
    "frontier": {"input_per_million": 100.0, "output_per_million": 200.0},
}
QUIET = {"enabled": False}
LADDER = {
    "thresholds": {"mode": "probability", "probability": 0.5}, "queue": QUIET,
    "upper": {"frontier": {"mode": "probability", "probability": 0.8, "queue": QUIET}},
}


@pytest.fixture
def engines():
    return {name: FakeEngine(name) for name in ("tiny", "big", "huge")}


@pytest.fixture
def gateway(engines):
    tiers = {
        "small": TierSpec(served_name="tiny", max_model_len=256),
        "large": TierSpec(served_name="big", max_model_len=256),
        # A hosted model that does not return logprobs.
        "frontier": TierSpec(served_name="huge", max_model_len=256, capabilities=ALL_CAPABILITIES - {"logprobs"}),
    }
    by_tier = dict(zip(tiers, engines.values()))
    routing = Routing(scorer=lambda text, _category, _asks: SCORES[text.split()[0]])
    gateway = build_gateway(Tiers(by_tier, tiers), LimitSettings(), routing=routing)
    configure(gateway)
    return gateway


def configure(gateway, **extra) -> bool:
    return gateway.reconfigure({"routing": {"learned": LADDER}, "spend": {"prices": PRICES}, **extra})


@pytest.fixture
def client(gateway):
    with TestClient(gateway.app, raise_server_exceptions=False) as client:
        yield client


def chat(text: str, model: str = "auto", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 4, **extra}


@pytest.mark.parametrize("text, tier, model", [
    ("easy question", "small", "tiny"), ("medium question", "large", "big"), ("hard question", "frontier", "huge"),
])
def test_auto_picks_among_three_tiers_by_score(client, text, tier, model):
    response = client.post(CHAT, json=chat(text))
    assert response.status_code == 200, response.text
    assert response.headers["x-gateway-tier"] == tier and response.json()["model"] == model


def test_a_request_the_top_tier_cannot_serve_goes_to_the_best_tier_that_can(client):
    response = client.post(CHAT, json=chat("hard question", logprobs=True, top_logprobs=1))
    assert response.status_code == 200, response.text
    assert response.headers["x-gateway-tier"] == "large"
    assert response.json()["choices"][0]["logprobs"] is not None


def test_the_third_tier_is_pinnable_listed_and_refuses_what_it_cannot(client):
    assert client.post(CHAT, json=chat("easy question", model="frontier")).headers["x-gateway-tier"] == "frontier"
    assert client.post(CHAT, json=chat("easy question", model="huge")).headers["x-gateway-tier"] == "frontier"
    ids = {card["id"] for card in client.get("/v1/models").json()["data"]}
    assert {"auto", "small", "large", "frontier", "huge"} <= ids
    refused = client.post(CHAT, json=chat("easy", model="frontier", logprobs=True))
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "logprobs"


def test_each_tier_is_charged_its_own_price_and_saving_counts_against_the_top_one(client, gateway):
    for text in SCORES:
        client.post(CHAT, json=chat(f"{text} question"))

    def value(name, tier, **labels):
        return gateway.metrics.registry.get_sample_value(name, {"tier": tier, "category": "", **labels}) or 0.0

    for tier, price in PRICES.items():
        prompt = value("gateway_spend_tokens_total", tier, kind="prompt")
        completion = value("gateway_spend_tokens_total", tier, kind="completion")
        assert prompt > 0 and completion > 0
        usd = (prompt * price["input_per_million"] + completion * price["output_per_million"]) / 1e6
        top = PRICES["frontier"]
        as_top = (prompt * top["input_per_million"] + completion * top["output_per_million"]) / 1e6
        assert value("gateway_spend_usd_total", tier) == pytest.approx(usd)
        assert value("gateway_spend_top_tier_usd_total", tier) == pytest.approx(as_top)


def test_a_cascade_escalates_from_large_to_the_tier_above(client, gateway):
    assert configure(gateway, cascade={"categories": ["*"], "threshold": 0.0})  # no answer clears 0
    response = client.post(CHAT, json=chat("medium question"))
    assert response.status_code == 200, response.text
    h = response.headers
    assert (h["x-gateway-tier"], h["x-gateway-cascade"]) == ("frontier", "large>frontier")


@pytest.mark.parametrize("routing", [
    {"learned": {"upper": {"frontiers": {}}}},
    {"learned": {"thresholds": {"category_overrides": {"billing": "medium"}}}},
    {"learned": {"category_bars": {"billing": {"giant": 0.2}}}},
    {"learned": {"category_shares": {"billing": {"giant": 0.2}}}},
])
def test_a_live_config_naming_a_tier_not_served_is_refused(client, gateway, routing):
    assert not gateway.reconfigure({"routing": routing})
    assert "is not a tier here" in gateway.state.rejected.message
    assert client.post(CHAT, json=chat("hard question")).headers["x-gateway-tier"] == "frontier"  # last good kept


def test_live_config_names_unknown_tiers_with_their_path():
    config = LiveConfig.parse({"resilience": {"fallback": {"frontier": "large"}}})
    assert config.unknown_tiers(("small", "large")) == [
        "resilience.fallback: frontier is not a tier here (tiers: small, large)"
    ]
    assert config.unknown_tiers(("small", "large", "frontier")) == []


def test_config_check_knows_the_tiers_a_serve_config_deploys():
    from gateway.live_config import check_serve_config

    def document(extra):
        ingress = {"name": "Ingress", "user_config": {"routing": {"learned": {"upper": {"frontier": {}}}}}}
        return {"applications": [{"name": "gateway", "args": {"extra_tiers": extra}, "deployments": [ingress]}]}

    assert check_serve_config(document({"frontier": {"kind": "mock"}})) == {"gateway": None}
    assert "routing.learned.upper: frontier is not a tier here" in check_serve_config(document({}))["gateway"]


def test_a_cascade_climbs_every_tier_until_an_answer_is_kept(client, gateway, engines):
    """Every fake token has logprob -0.5: a bar of 0 escalates each answer, large's own bar of
    -1 keeps large's."""
    assert configure(gateway, cascade={"categories": ["*"], "threshold": 0.0})
    response = client.post(CHAT, json=chat("easy question"))
    assert response.headers["x-gateway-cascade"] == "small>large>frontier"
    assert response.json()["usage"]["completion_tokens"] == 12  # three answers of 4 tokens
    assert [len(e.seen) for e in engines.values()] == [1, 1, 1]
    assert engines["huge"].seen[0].agentic.logprobs is None  # the top tier is not probed
    assert configure(gateway, cascade={"categories": ["*"], "threshold": 0.0, "per_tier": {"large": -1.0}})
    kept = client.post(CHAT, json=chat("easy question"))
    h = kept.headers
    assert (h["x-gateway-cascade"], h["x-gateway-tier"]) == ("small>large", "large")
    assert h["x-gateway-cascade-verdict"] == "mean_logprob=-0.5>=-1"


def test_a_streamed_cascade_streams_the_top_tier_after_every_lower_one_escalated(client, gateway):
    assert configure(gateway, cascade={"categories": ["*"], "threshold": 0.0})
    with client.stream("POST", CHAT, json=chat("easy question", stream=True)) as response:
        body = "".join(response.iter_text())
    assert response.headers["x-gateway-cascade"] == "small>large>frontier"
    assert '"model":"huge"' in body.replace(" ", "") and body.rstrip().endswith("[DONE]")


def spend_on(client, gateway, tier: str, **extra) -> None:
    """Spend something on `tier` (pinned), then give it a budget that this spend exhausts."""
    assert client.post(CHAT, json=chat("easy question", model=tier)).status_code == 200
    assert configure(gateway, spend={"prices": PRICES, "tier_budgets": {tier: {"usd": 1e-12}}}, **extra)


def test_auto_routes_below_a_tier_whose_budget_is_spent(client, gateway):
    spend_on(client, gateway, "frontier")
    hard = client.post(CHAT, json=chat("hard question")).headers
    assert (hard["x-gateway-tier"], hard["x-gateway-route-reason"]) == ("large", "tier_budget")
    assert client.post(CHAT, json=chat("medium question")).headers["x-gateway-tier"] == "large"
    spend_on(client, gateway, "large")  # large spent, frontier's budget gone: hard goes up, medium down
    assert client.post(CHAT, json=chat("hard question")).headers["x-gateway-tier"] == "frontier"
    medium = client.post(CHAT, json=chat("medium question")).headers
    assert (medium["x-gateway-tier"], medium["x-gateway-route-reason"]) == ("small", "tier_budget")


def test_a_cascade_does_not_escalate_into_a_tier_whose_budget_is_spent(client, gateway):
    cascade = {"categories": ["*"], "threshold": 0.0}  # no answer clears 0: every answer escalates
    spend_on(client, gateway, "frontier", cascade=cascade)
    from_large = client.post(CHAT, json=chat("medium question")).headers
    assert from_large["x-gateway-tier"] == "large" and "x-gateway-cascade" not in from_large
    from_small = client.post(CHAT, json=chat("easy question")).headers
    assert (from_small["x-gateway-tier"], from_small["x-gateway-cascade"]) == ("large", "small>large")
