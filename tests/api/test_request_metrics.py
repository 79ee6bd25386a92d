"""`gateway_requests_total` counts every request dispatched to a tier once, with its real
status, from its dispatch on: both response modes, retries and fallback included."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.calls import plan_call
from gateway.live_config import LiveConfig
from wire.chat import ChatCompletionRequest

CHAT = "/v1/chat/completions"
TOO_LONG = 100  # max_tokens over the small tier's 64-token context: the engine refuses it


def body(model="small", text="hello world", max_tokens=3, **extra):
    return {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens, **extra}


def baseline(gateway):
    gateway.reconfigure(LiveConfig.parse({
        "routing": {"policy": "baseline", "baseline": {"threshold": 0.0}},  # auto goes large
        "resilience": {"retry_backoff_s": 0},
    }).model_dump())


def counted(gateway) -> dict[tuple[str, str, str], float]:
    """Every non-zero series of gateway_requests_total: (endpoint, tier, status) -> count."""
    series = {}
    for metric in gateway.metrics.registry.collect():
        for sample in metric.samples:
            if sample.name == "gateway_requests_total" and sample.value:
                labels = sample.labels
                series[(labels["endpoint"], labels["tier"], labels["status"])] = sample.value
    return series


def value(gateway, name, **labels) -> float:
    return gateway.metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("stream", [False, True])
def test_an_engine_request_error_counts_as_400(client, gateway, stream):
    response = client.post(CHAT, json=body(max_tokens=TOO_LONG, stream=stream))
    assert response.status_code == 400
    assert counted(gateway) == {("chat", "small", "400"): 1.0}


@pytest.mark.parametrize("stream", [False, True])
def test_an_unavailable_tier_counts_as_503_once(client, gateway, engines, stream):
    baseline(gateway)
    engines["large"].unavailable_for = -1  # retried, then a 503
    response = client.post(CHAT, json=body(model="large", stream=stream))
    assert response.status_code == 503 and engines["large"].calls == 3
    assert counted(gateway) == {("chat", "large", "503"): 1.0}


@pytest.mark.parametrize("stream", [False, True])
def test_a_fallback_counts_once_under_the_tier_that_served(client, gateway, engines, stream):
    baseline(gateway)
    engines["large"].unavailable_for = -1
    response = client.post(CHAT, json=body(model="auto", stream=stream))
    assert response.status_code == 200 and response.headers["x-gateway-tier"] == "small"
    assert counted(gateway) == {("chat", "small", "200"): 1.0}


def test_a_failed_fallback_counts_once_under_the_last_tier_tried(client, gateway, engines):
    baseline(gateway)
    engines["large"].unavailable_for = engines["small"].unavailable_for = -1
    assert client.post(CHAT, json=body(model="auto")).status_code == 503
    assert counted(gateway) == {("chat", "small", "503"): 1.0}


def test_a_stream_failing_after_its_first_token_counts_as_500(client, gateway, engines):
    engines["small"].fail_after = 1
    response = client.post(CHAT, json=body(stream=True))
    assert response.status_code == 200 and '"type":"api_error"' in response.text
    assert counted(gateway) == {("chat", "small", "500"): 1.0}


@pytest.mark.parametrize("stream", [False, True])
def test_success_counts_once_and_leaves_nothing_in_flight(client, gateway, stream):
    assert client.post(CHAT, json=body(stream=stream)).status_code == 200
    assert counted(gateway) == {("chat", "small", "200"): 1.0}
    assert value(gateway, "gateway_in_flight_requests", tier="small") == 0


def request(model="small", max_tokens=2) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(body(model=model, max_tokens=max_tokens))


async def test_a_stream_is_in_flight_and_timed_while_it_waits_for_its_first_token(gateway, engines):
    engines["small"].token_delay_s = 0.05  # before each token, the first one included
    plan = await plan_call(gateway, request(max_tokens=1), "req-1")
    opening = asyncio.create_task(gateway.dispatcher.open_stream(plan))
    await asyncio.sleep(0.02)
    assert value(gateway, "gateway_in_flight_requests", tier="small") == 1
    _, chunks = await opening
    assert [chunk.text async for chunk in chunks] == ["hello"]
    assert value(gateway, "gateway_in_flight_requests", tier="small") == 0
    assert counted(gateway) == {("chat", "small", "200"): 1.0}
    latency = value(gateway, "gateway_request_latency_seconds_sum", endpoint="chat", tier="small")
    assert latency >= 0.05  # the wait for the first token is part of it


async def test_a_stream_cancelled_before_its_first_token_counts_as_499(gateway, engines):
    engines["small"].token_delay_s = 1.0
    plan = await plan_call(gateway, request(), "req-1")
    opening = asyncio.create_task(gateway.dispatcher.open_stream(plan))
    await asyncio.sleep(0.02)
    opening.cancel()
    with pytest.raises(asyncio.CancelledError):
        await opening
    assert counted(gateway) == {("chat", "small", "499"): 1.0}
    assert value(gateway, "gateway_in_flight_requests", tier="small") == 0
