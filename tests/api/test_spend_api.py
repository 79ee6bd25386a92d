"""Spend through the HTTP edge (fake engines): the counters add up to the usage each client
was sent, a hard budget refuses with 429 budget_exceeded, a soft one sends `auto` to the
cheapest tier, and prices change live."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from starlette.testclient import TestClient

from gateway.assembly import Edge, Features, SpendParts, Tiers, build_gateway
from gateway.auth import Authenticator, LocalRateLimiter
from gateway.catalog import TierSpec
from gateway.keys import KeyStore
from gateway.live_config import LiveConfig
from gateway.settings import LimitSettings
from spend.config import SpendSettings
from spend.ledger import SpendLedger

CHAT, COMPLETIONS, RESPONSES = "/v1/chat/completions", "/v1/completions", "/v1/responses"
PRICES = {
    "small": {"input_per_million": 100_000.0, "output_per_million": 300_000.0},
    "large": {"input_per_million": 1_000_000.0, "output_per_million": 2_000_000.0},
}


@pytest.fixture
def store(tmp_path):
    return KeyStore(tmp_path / "keys.sqlite")


@pytest.fixture
def ledger(tmp_path):
    return SpendLedger(tmp_path / "spend" / "spend.sqlite")


@pytest.fixture
def gateway(engines, store, ledger):
    tiers = {"small": TierSpec(served_name="tiny", max_model_len=64), "large": TierSpec(served_name="big", max_model_len=128)}
    auth = Authenticator(store, LocalRateLimiter(), cache_ttl_s=0, detail_headers=True)
    gateway = build_gateway(
        Tiers(engines, tiers), LimitSettings(), edge=Edge(auth=auth),
        features=Features(spend=SpendParts(ledger, SpendSettings(flush_s=3600))),
    )
    configure(gateway)
    return gateway


def configure(gateway, **spend) -> None:
    assert gateway.reconfigure(LiveConfig.parse({
        "routing": {"policy": "baseline"},  # auto: a short prompt goes small
        "spend": {"prices": PRICES, **spend},
    }).model_dump(mode="json"))


@pytest.fixture
def client(gateway):
    with TestClient(gateway.app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def key(store):
    record, secret = store.create("app")
    return record, {"authorization": f"Bearer {secret}"}


def chat(model="small", **extra):
    return {"model": model, "messages": [{"role": "user", "content": "hello there world"}], "max_tokens": 4, **extra}


def value(gateway, name, **labels) -> float:
    return gateway.metrics.registry.get_sample_value(name, labels) or 0.0


def spent(gateway, tier) -> tuple[float, float, float, float]:
    """(usd, top-tier usd, prompt tokens, completion tokens) counted for `tier`, category ''."""
    return (
        value(gateway, "gateway_spend_usd_total", tier=tier, category=""),
        value(gateway, "gateway_spend_top_tier_usd_total", tier=tier, category=""),
        value(gateway, "gateway_spend_tokens_total", tier=tier, category="", kind="prompt"),
        value(gateway, "gateway_spend_tokens_total", tier=tier, category="", kind="completion"),
    )


def routed(response) -> tuple[str, str]:
    return response.headers["x-gateway-tier"], response.headers["x-gateway-route-reason"]


def events(response) -> list[dict]:
    lines = [line[len("data: "):] for line in response.text.splitlines() if line.startswith("data: ")]
    return [json.loads(line) for line in lines if line != "[DONE]"]


def usage_seen(path: str, body: dict, response) -> tuple[int, int]:
    if not body.get("stream"):
        usage = response.json()["usage"]
    elif path == RESPONSES:
        usage = [e for e in events(response) if e["type"] in ("response.completed", "response.incomplete")][0]["response"]["usage"]
    else:
        usage = events(response)[-1]["usage"]
    if path == RESPONSES:
        return usage["input_tokens"], usage["output_tokens"]
    return usage["prompt_tokens"], usage["completion_tokens"]


CASES = [
    (CHAT, chat()),
    (CHAT, chat(stream=True, stream_options={"include_usage": True})),
    (COMPLETIONS, {"model": "large", "prompt": "one two three four five", "max_tokens": 3}),
    (COMPLETIONS, {"model": "large", "prompt": "one two", "max_tokens": 2, "stream": True,
                   "stream_options": {"include_usage": True}}),
    (RESPONSES, {"model": "small", "input": "hello world", "max_output_tokens": 3}),
    (RESPONSES, {"model": "large", "input": "hello world", "max_output_tokens": 3, "stream": True}),
]


@pytest.mark.parametrize("path, body", CASES)
def test_spend_counters_add_up_to_the_usage_the_client_saw(client, gateway, key, path, body):
    response = client.post(path, json=body, headers=key[1])
    assert response.status_code == 200, response.text
    prompt, completion = usage_seen(path, body, response)
    assert prompt > 0 and completion > 0
    tier = response.headers["x-gateway-tier"]
    price = PRICES[tier]
    usd = (prompt * price["input_per_million"] + completion * price["output_per_million"]) / 1e6
    top = (prompt * PRICES["large"]["input_per_million"] + completion * PRICES["large"]["output_per_million"]) / 1e6
    assert spent(gateway, tier) == (pytest.approx(usd), pytest.approx(top), prompt, completion)


def test_the_ledger_holds_what_the_counters_hold_per_key(gateway, key, ledger):
    record, headers = key
    with TestClient(gateway.app) as client:
        for body in (chat(), chat("large"), chat(stream=True)):
            assert client.post(CHAT, json=body, headers=headers).status_code == 200
    # The app stopped: its last write landed.
    (line,) = ledger.report(datetime(2000, 1, 1, tzinfo=timezone.utc), "key")
    usd = sum(spent(gateway, tier)[0] for tier in ("small", "large"))
    top = sum(spent(gateway, tier)[1] for tier in ("small", "large"))
    assert (line.group, line.amount.key_name, line.amount.requests) == (record.id, "app", 3)
    assert line.amount.usd == pytest.approx(usd) and line.amount.saved_usd == pytest.approx(top - usd)


def test_a_stream_cut_by_a_failure_is_charged_what_it_generated(client, gateway, engines, key):
    engines["small"].fail_after = 2
    response = client.post(CHAT, json=chat(stream=True, stream_options={"include_usage": True}), headers=key[1])
    assert response.status_code == 200 and "error" in response.text  # in-band, after the first tokens
    usd, _, prompt, completion = spent(gateway, "small")
    assert completion == 2 and usd == pytest.approx((prompt * 100_000 + 2 * 300_000) / 1e6)


def test_a_spent_hard_budget_is_refused_with_429(client, gateway, key):
    record, headers = key
    configure(gateway, budgets={"app": {"period": "day", "hard_usd": 0.5}})
    assert client.post(CHAT, json=chat(), headers=headers).status_code == 200  # 0.8 USD: now over
    refused = client.post(CHAT, json=chat(), headers=headers)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "budget_exceeded" and error["type"] == "rate_limit_error"
    assert "daily hard budget of $0.50" in error["message"] and "resets at" in error["message"]
    assert 0 < int(refused.headers["retry-after"]) <= 86_400
    assert value(gateway, "gateway_budget_actions_total", action="refused") == 1
    # The budget is live: raised, the key is served again; another key never had one.
    configure(gateway, budgets={record.id: {"period": "month", "hard_usd": 100}})
    assert client.post(CHAT, json=chat(), headers=headers).status_code == 200


def test_a_spent_soft_budget_sends_auto_to_the_cheapest_tier(client, gateway, key):
    _, headers = key
    # Large made the cheaper tier: a short prompt, which auto sends small, goes large instead.
    cheap_large = {"small": PRICES["large"], "large": PRICES["small"]}
    assert gateway.reconfigure(LiveConfig.parse({
        "routing": {"policy": "baseline"},
        "spend": {"prices": cheap_large, "budgets": {"app": {"soft_usd": 0.0001, "hard_usd": 1000}}},
    }).model_dump(mode="json"))
    first = client.post(CHAT, json=chat("auto"), headers=headers)  # nothing spent yet: the policy decides
    assert first.headers["x-gateway-tier"] == "small" and first.headers["x-gateway-route-reason"] != "budget"
    second = client.post(CHAT, json=chat("auto"), headers=headers)
    assert second.status_code == 200
    assert routed(second) == ("large", "budget")
    pinned = client.post(CHAT, json=chat("small"), headers=headers)
    assert routed(pinned) == ("small", "explicit")
    assert value(gateway, "gateway_routing_decisions_total", tier="large", reason="budget") == 1
    assert value(gateway, "gateway_budget_actions_total", action="cheapest") == 1


def test_a_price_change_applies_to_the_next_request_without_restart(client, gateway, key):
    _, headers = key
    assert client.post(CHAT, json=chat(), headers=headers).status_code == 200
    before = spent(gateway, "small")
    configure(gateway, prices={"small": {"input_per_million": 0, "output_per_million": 0}, "large": PRICES["large"]})
    assert client.post(CHAT, json=chat(), headers=headers).status_code == 200
    after = spent(gateway, "small")
    assert after[0] == pytest.approx(before[0])  # the second answer cost nothing
    assert after[2] == 2 * before[2]  # its tokens still counted
    assert gateway.config.spend.prices["small"].input_per_million == 0


def test_a_spent_tier_budget_routes_auto_below_that_tier_until_raised(client, gateway, key):
    _, headers = key
    # Every auto request scores above the threshold: the baseline sends it large.
    routing = {"policy": "baseline", "baseline": {"threshold": 0.0}}

    def push(usd: float) -> None:
        assert gateway.reconfigure(LiveConfig.parse({
            "routing": routing, "spend": {"prices": PRICES, "tier_budgets": {"large": {"period": "day", "usd": usd}}},
        }).model_dump(mode="json"))

    push(1e9)
    first = client.post(CHAT, json=chat("auto"), headers=headers)
    assert routed(first) == ("large", "baseline:above_threshold")
    push(spent(gateway, "large")[0])  # exactly what large has spent today: spent
    moved = client.post(CHAT, json=chat("auto"), headers=headers)
    assert moved.status_code == 200
    assert routed(moved) == ("small", "tier_budget")
    # A pinned model is still served where it is pinned; the key has no budget of its own.
    pinned = client.post(CHAT, json=chat("large"), headers=headers)
    assert routed(pinned) == ("large", "explicit")
    assert value(gateway, "gateway_routing_decisions_total", tier="small", reason="tier_budget") == 1
    assert value(gateway, "gateway_budget_actions_total", action="tier_budget") == 1
    push(spent(gateway, "large")[0] * 10)  # raised live: large again
    again = client.post(CHAT, json=chat("auto"), headers=headers)
    assert again.headers["x-gateway-tier"] == "large"


def test_a_categorys_spent_tier_budget_routes_only_that_category_below(client, gateway, key):
    _, headers = key
    routing = {"policy": "baseline", "baseline": {"threshold": 0.0}}  # every auto request scores large

    def ask(category: str):
        response = client.post(CHAT, json=chat("auto", metadata={"category": category}), headers=headers)
        assert response.status_code == 200, response.text
        return routed(response)

    assert gateway.reconfigure(LiveConfig.parse({
        "routing": routing, "spend": {"prices": PRICES, "category_tier_budgets": {"Billing": {"large": {"usd": 1e-9}}}},
    }).model_dump(mode="json"))
    assert ask("billing") == ("large", "baseline:above_threshold")  # nothing spent yet
    assert ask("billing") == ("small", "tier_budget")  # billing has spent its large budget
    assert ask("refund") == ("large", "baseline:above_threshold")  # another category has not
    assert value(gateway, "gateway_budget_actions_total", action="tier_budget") == 1


def test_a_tier_budget_for_a_tier_not_served_is_refused(gateway):
    assert not gateway.reconfigure(LiveConfig.parse({
        "spend": {"tier_budgets": {"frontier": {"usd": 5}}},
    }).model_dump(mode="json"))
    assert "spend.tier_budgets: frontier is not a tier here" in gateway.state.rejected.message
