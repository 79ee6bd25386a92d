"""The gateway with its large tier at an OpenAI-compatible upstream (served in-process)
and its small tier on the mock engine: routing, streaming, the upstream's refusals as
the same OpenAI errors, its outages as fallback or a 503 with its Retry-After."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from engines.config import MockTierSettings, RemoteTierSettings
from engines.mock import MockEngine, MockSpec
from engines.openai_remote import OpenAIRemoteEngine, RemoteSpec
from gateway.assembly import Tiers, build_gateway
from gateway.catalog import TierSpec
from gateway.live_config import LiveConfig
from gateway.settings import LimitSettings
from tests.support.openai_upstream import Upstream, serving

KEY = "sk-upstream-secret-42"
CHAT = "/v1/chat/completions"
LONG = "please explain " + "a" * 620  # over the baseline rule's 600 characters: large


@pytest.fixture(scope="module")
def served():
    upstream = Upstream()
    with serving(upstream) as base_url:
        yield upstream, base_url


@pytest.fixture
def upstream(served):
    served[0].reset()
    return served[0]


@pytest.fixture
def client(served, upstream):
    remote = RemoteSpec(settings=RemoteTierSettings(base_url=served[1]), model="big-upstream", max_model_len=4096)
    large = OpenAIRemoteEngine.build(remote, SecretStr(KEY))
    small = MockEngine(MockSpec(settings=MockTierSettings(ttft_s=0, itl_s=0, output_tokens=4), max_model_len=512))
    specs = {"small": TierSpec(served_name="mock-small", max_model_len=512),
             "large": TierSpec(served_name="big", max_model_len=4096)}
    gateway = build_gateway(Tiers({"small": small, "large": large}, specs), LimitSettings())
    gateway.reconfigure(LiveConfig.parse({
        "routing": {"policy": "baseline"}, "resilience": {"retry_backoff_s": 0},
    }).model_dump())
    with TestClient(gateway.app, raise_server_exceptions=False) as client:
        yield client
        client.portal.call(large.aclose)


def ask(model: str = "large", text: str = "hi", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 3, **extra}


def events(response) -> list:
    lines = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_pinned_large_is_answered_by_the_upstream(client, upstream):
    response = client.post(CHAT, json=ask())
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model"] == "big" and answer["choices"][0]["message"]["content"] == "alpha beta gamma"
    assert answer["usage"] == {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
    assert upstream.seen[-1]["auth"] == f"Bearer {KEY}"
    assert upstream.seen[-1]["body"]["model"] == "big-upstream"


def test_auto_routes_between_the_upstream_and_the_mock(client, upstream):
    long = client.post(CHAT, json=ask("auto", LONG))
    short = client.post(CHAT, json=ask("auto", "hi"))
    assert long.headers["x-gateway-tier"] == "large" and long.json()["model"] == "big"
    assert short.headers["x-gateway-tier"] == "small" and short.json()["model"] == "mock-small"
    assert len(upstream.seen) == 1
    assert short.json()["choices"][0]["message"]["content"] == client.post(CHAT, json=ask("small")).json()["choices"][0]["message"]["content"]


def test_a_stream_from_the_upstream_with_usage(client, upstream):
    response = client.post(CHAT, json=ask(stream=True, stream_options={"include_usage": True}))
    assert response.status_code == 200
    chunks = events(response)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "alpha beta gamma"
    assert chunks[-1]["usage"] == {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}


@pytest.mark.parametrize(
    ("status", "code", "expected_status", "expected_code"),
    [(400, "invalid_value", 400, "invalid_value"), (404, "model_not_found", 404, "model_not_found"),
     (413, None, 413, "payload_too_large"), (422, None, 400, None)],
)
@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_refusal_is_the_same_openai_error(client, upstream, status, code, expected_status,
                                                      expected_code, stream):
    upstream.fail_next(status, "the upstream says no", code=code)
    response = client.post(CHAT, json=ask(stream=stream))
    assert response.status_code == expected_status
    error = response.json()["error"]
    assert "the upstream says no" not in error["message"] and error["type"] == "invalid_request_error"
    assert error["message"].startswith(f"the upstream refused the request ({status}")
    assert error["code"] == expected_code
    assert len(upstream.seen) == 1  # a refusal is final: no retry, no fallback


def test_an_upstream_503_on_auto_traffic_falls_back_to_small(client, upstream):
    upstream.fail_next(503, "overloaded", times=3)  # the first try and both retries
    response = client.post(CHAT, json=ask("auto", LONG))
    assert response.status_code == 200
    assert response.headers["x-gateway-tier"] == "small"
    assert response.headers["x-gateway-route-reason"] == "fallback:large_unavailable"
    assert len(upstream.seen) == 3


def test_a_long_retry_after_is_passed_on_instead_of_waited_out(client, upstream):
    upstream.fail_next(429, "rate limited", headers={"retry-after": "30"})
    response = client.post(CHAT, json=ask("large"))
    assert response.status_code == 503 and response.headers["retry-after"] == "30"
    assert response.json()["error"]["type"] == "service_unavailable"
    assert KEY not in response.text
    assert len(upstream.seen) == 1


def test_a_short_retry_after_is_waited_before_the_retry(client, upstream):
    upstream.fail_next(429, "rate limited", headers={"retry-after": "1"})
    response = client.post(CHAT, json=ask("large"))
    assert response.status_code == 200 and len(upstream.seen) == 2
    assert response.elapsed.total_seconds() >= 1.0
