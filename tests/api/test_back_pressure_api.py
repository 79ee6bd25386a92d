"""A tier whose Ray Serve queue is full (BackPressureError at the ingress's handle): the
client gets an OpenAI-shaped 503 with Retry-After, never a 500; auto traffic falls back;
the breaker stays closed (a loaded tier is not a broken one)."""

import pytest
from ray.serve.exceptions import BackPressureError

from deployments.handle_client import HandleEngine
from gateway.live_config import LiveConfig
from tests.support.fake_engine import FakeEngine
from tests.support.ray_handles import FailingHandle

CHAT = "/v1/chat/completions"
LONG = "please explain " + "a" * 620  # over the baseline rule's 600 characters: large


@pytest.fixture
def engines():
    full = FailingHandle(BackPressureError(num_queued_requests=512, max_queued_requests=512, retry_after_s=1.0))
    return {"small": FakeEngine("tiny", max_model_len=64), "large": HandleEngine(full)}


@pytest.fixture
def baseline(gateway):
    gateway.reconfigure(LiveConfig.parse({
        "routing": {"policy": "baseline"},
        "resilience": {"retry_backoff_s": 0, "breaker": {"failure_threshold": 2, "reset_after_s": 60}},
    }).model_dump())
    return gateway


def ask(model: str, text: str = "hi", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 3, **extra}


@pytest.mark.parametrize("stream", [False, True])
def test_a_full_queue_is_a_503_with_retry_after(client, baseline, stream):
    for _ in range(4):  # past the breaker's threshold: still "busy", never "breaker is open"
        response = client.post(CHAT, json=ask("large", stream=stream))
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["type"] == "service_unavailable" and error["code"] == "tier_busy"
        assert set(error) == {"message", "type", "param", "code"}
        assert response.headers["retry-after"] == "1"
    assert baseline.metrics.registry.get_sample_value("gateway_breaker_state", {"tier": "large"}) == 0


def test_auto_traffic_moves_to_the_other_tier(client, baseline):
    response = client.post(CHAT, json=ask("auto", LONG))
    assert response.status_code == 200
    assert response.headers["x-gateway-route-reason"] == "fallback:large_unavailable"
