"""Retries, fallback and the breaker through the HTTP edge, with injected tier failures."""

from gateway.live_config import LiveConfig

CHAT = "/v1/chat/completions"
LONG = "please explain " + "a" * 620  # over the baseline rule's 600 chars, three "tokens" for the fake


def body(model="auto", text=LONG, **extra):
    return {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 3, **extra}


def baseline(gateway, **resilience):
    gateway.reconfigure(LiveConfig.parse({
        "routing": {"policy": "baseline"},
        "resilience": {"retry_backoff_s": 0, **resilience},
    }).model_dump())


def test_transient_failure_is_retried(client, gateway, engines):
    baseline(gateway)
    engines["small"].unavailable_for = 2
    response = client.post(CHAT, json=body(model="small", text="hi"))
    assert response.status_code == 200 and engines["small"].calls == 3
    assert gateway.metrics.registry.get_sample_value("gateway_engine_retries_total", {"tier": "small"}) == 2


def test_large_down_auto_falls_back_to_small(client, gateway, engines):
    baseline(gateway)
    engines["large"].unavailable_for = -1
    response = client.post(CHAT, json=body())
    assert response.status_code == 200
    assert response.headers["x-gateway-tier"] == "small"
    assert response.headers["x-gateway-route-reason"] == "fallback:large_unavailable"
    assert response.json()["model"] == "tiny"


def test_pinned_tier_down_is_a_clean_503(client, gateway, engines):
    baseline(gateway)
    engines["large"].unavailable_for = -1
    response = client.post(CHAT, json=body(model="large", text="hi"))
    assert response.status_code == 503 and response.json()["error"]["type"] == "service_unavailable"


def test_stream_falls_back_before_the_first_token(client, gateway, engines):
    baseline(gateway)
    engines["large"].unavailable_for = -1
    response = client.post(CHAT, json=body(stream=True))
    assert response.status_code == 200 and response.headers["x-gateway-tier"] == "small"
    assert response.text.rstrip().endswith("data: [DONE]")


def test_breaker_opens_and_stops_calling_the_tier(client, gateway, engines):
    baseline(gateway, retries=0, breaker={"failure_threshold": 2, "reset_after_s": 60})
    engines["large"].unavailable_for = -1
    for _ in range(2):
        assert client.post(CHAT, json=body(model="large", text="hi")).status_code == 503
    calls = engines["large"].calls
    assert client.post(CHAT, json=body(model="large", text="hi")).status_code == 503
    assert engines["large"].calls == calls  # failed fast: the tier was not called
    assert gateway.metrics.registry.get_sample_value("gateway_breaker_state", {"tier": "large"}) == 2
    # auto traffic still gets answered, by the fallback tier
    assert client.post(CHAT, json=body()).headers["x-gateway-route-reason"] == "fallback:large_unavailable"


def test_no_fallback_when_not_configured(client, gateway, engines):
    baseline(gateway, fallback={})
    engines["large"].unavailable_for = -1
    assert client.post(CHAT, json=body()).status_code == 503


def test_slow_large_tier_times_out_and_auto_falls_back(client, gateway, engines):
    baseline(gateway, timeout_s={"large": 0.05, "small": 5})
    engines["large"].token_delay_s = 0.2
    response = client.post(CHAT, json=body())
    assert response.status_code == 200 and response.headers["x-gateway-tier"] == "small"
    pinned = client.post(CHAT, json=body(model="large", text="hi"))
    assert pinned.status_code == 503 and "did not answer within" in pinned.json()["error"]["message"]


def test_tier_without_live_replica_fails_fast(engines):
    import time as clock

    from starlette.testclient import TestClient

    from gateway.assembly import build_gateway, Tiers
    from gateway.catalog import TierSpec
    from gateway.settings import LimitSettings
    from router.decision import TierLoad

    async def only_small():  # the load board lists live replicas; large has none
        return {"small": TierLoad()}

    tiers = {"small": TierSpec(served_name="tiny", max_model_len=64), "large": TierSpec(served_name="big", max_model_len=128)}
    config = LiveConfig.parse({"routing": {"policy": "baseline"}, "resilience": {"retry_backoff_s": 0}})
    gateway = build_gateway(Tiers(engines, tiers, loads=only_small), LimitSettings(), config=config)
    with TestClient(gateway.app) as client:
        deadline = clock.monotonic() + 2
        while clock.monotonic() < deadline:  # until the poller's first snapshot is in
            response = client.post(CHAT, json=body())
            if response.headers.get("x-gateway-route-reason", "").startswith("fallback:"):
                break
            clock.sleep(0.05)
        assert response.headers["x-gateway-route-reason"] == "fallback:large_unavailable"
        pinned = client.post(CHAT, json=body(model="large", text="hi"))
    # failing fast: "no live replica", or the breaker those failures opened
    message = pinned.json()["error"]["message"]
    assert pinned.status_code == 503 and ("no live replica" in message or "breaker is open" in message)
    assert engines["large"].calls == 0
