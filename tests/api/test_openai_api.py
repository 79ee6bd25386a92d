import json

import pytest

CHAT = "/v1/chat/completions"


def chat_body(**fields):
    return {"model": "small", "messages": [{"role": "user", "content": "hello world"}],
            "max_tokens": 3, **fields}


def events(response):
    lines = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_chat_non_stream_reports_route_and_usage(client):
    r = client.post(CHAT, json=chat_body())
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "tiny"
    assert body["choices"][0]["message"]["content"] == "hello world hello"
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    assert r.headers["x-gateway-tier"] == "small"
    assert r.headers["x-gateway-route-reason"] == "explicit"
    assert r.headers["x-request-id"]


def test_auto_goes_through_the_baseline_policy(client):
    r = client.post(CHAT, json=chat_body(model="auto"))
    assert r.headers["x-gateway-route-reason"].startswith("baseline:")
    assert "x-gateway-route-score" in r.headers


def test_chat_stream_with_usage(client):
    r = client.post(CHAT, json=chat_body(stream=True, stream_options={"include_usage": True}))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    chunks = events(r)
    text = "".join(c["choices"][0]["delta"]["content"] for c in chunks if c["choices"])
    assert text == "hello world hello"
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3


def test_stream_without_usage_has_no_usage_chunk(client):
    chunks = events(client.post(CHAT, json=chat_body(stream=True)))
    assert all(c["choices"] for c in chunks) and all("usage" not in c for c in chunks)


def test_completions_non_stream_and_stream(client):
    body = {"model": "large", "prompt": "one two", "max_tokens": 2}
    r = client.post("/v1/completions", json=body)
    assert r.json()["choices"][0]["text"] == "one two" and r.json()["model"] == "big"
    chunks = events(client.post("/v1/completions", json={**body, "stream": True}))
    assert "".join(c["choices"][0]["text"] for c in chunks) == "one two"
    assert chunks[0]["object"] == "text_completion"


def test_models_lists_auto_and_tiers(client):
    ids = {m["id"] for m in client.get("/v1/models").json()["data"]}
    assert {"auto", "small", "large", "tiny", "big"} <= ids


def test_request_id_is_echoed(client):
    r = client.post(CHAT, json=chat_body(), headers={"x-request-id": "abc-123"})
    # The caller's id is echoed for correlation; the response id is the gateway's own.
    assert r.headers["x-request-id"] == "abc-123" and r.json()["id"] != "chatcmpl-abc-123"


def assert_error(r, status, param=None, code=None):
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    return error


def test_malformed_json(client):
    assert_error(client.post(CHAT, content=b'{"model": ', headers={"content-type": "application/json"}), 400)


def test_schema_violation_names_the_field(client):
    assert_error(client.post(CHAT, json=chat_body(temperature="hot")), 400, param="temperature")


def test_body_must_be_an_object(client):
    assert_error(client.post(CHAT, json=[1, 2]), 400)


def test_unknown_model_is_404(client):
    assert_error(client.post(CHAT, json=chat_body(model="gpt-9")), 404, param="model",
                 code="model_not_found")


def test_prompt_over_context_is_400(client):
    long = " ".join(["word"] * 100)
    r = client.post(CHAT, json=chat_body(messages=[{"role": "user", "content": long}]))
    assert_error(r, 400, param="messages", code="context_length_exceeded")


def test_stream_errors_before_first_token_get_a_status(client):
    long = " ".join(["word"] * 100)
    r = client.post(CHAT, json=chat_body(stream=True, messages=[{"role": "user", "content": long}]))
    assert_error(r, 400, code="context_length_exceeded")


def test_engine_failure_is_500(client, engines):
    engines["small"].fail_after = 0
    assert_error(client.post(CHAT, json=chat_body()), 500, code="engine_error")


def test_engine_failure_mid_stream_goes_in_band(client, engines):
    engines["small"].fail_after = 1
    r = client.post(CHAT, json=chat_body(stream=True))
    assert r.status_code == 200
    chunks = events(r)
    assert chunks[0]["choices"][0]["delta"]["content"] == "hello"
    assert chunks[-1]["error"]["type"] == "api_error"


def test_payload_too_large(client):
    r = client.post(CHAT, content=b"x" * 10_000, headers={"content-type": "application/json"})
    assert_error(r, 413)


def test_wrong_content_type(client):
    assert_error(client.post(CHAT, content=b"a=b", headers={"content-type": "text/plain"}), 415)


def test_invalid_utf8(client):
    r = client.post(CHAT, content=b'{"model": "\xff\xfe"}', headers={"content-type": "application/json"})
    assert_error(r, 400)


def test_unknown_path_and_method(client):
    assert_error(client.get("/v2/nothing"), 404)
    assert_error(client.get(CHAT), 405)


def test_health_ready_metrics(client):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready").json()
    assert ready["ready"] and set(ready["tiers"]) == {"small", "large"}
    client.post(CHAT, json=chat_body())
    metrics = client.get("/metrics").text
    assert 'gateway_requests_total{endpoint="chat",status="200",tier="small"} 1.0' in metrics
    assert 'gateway_tokens_total{kind="completion",tier="small"} 3.0' in metrics


def test_ready_is_503_when_a_tier_fails(client, engines):
    async def broken():
        raise RuntimeError("down")
    engines["large"].load = broken
    r = client.get("/ready")
    assert r.status_code == 503 and r.json()["tiers"]["large"]["ready"] is False


@pytest.mark.parametrize("threshold, tier", [(0.0, "large"), (1.0, "small")])
def test_live_config_changes_routing(client, gateway, threshold, tier):
    from gateway.live_config import LiveConfig
    gateway.apply(LiveConfig.parse({"routing": {"policy": "baseline", "baseline": {"threshold": threshold}}}))
    assert client.post(CHAT, json=chat_body(model="auto")).headers["x-gateway-tier"] == tier


def test_invalid_live_config_keeps_the_last_good_one(client, gateway):
    assert gateway.reconfigure({"routing": {"baseline": {"threshold": 0.0}}})
    assert not gateway.reconfigure({"routing": {"baseline": {"threshold": 7}}})
    assert not gateway.reconfigure({"routnig": {}})
    assert gateway.config.routing.baseline.threshold == 0.0
    assert client.post(CHAT, json=chat_body(model="auto")).headers["x-gateway-tier"] == "large"
    assert gateway.metrics.registry.get_sample_value("gateway_live_config_rejected_total") == 2.0


def test_invalid_first_config_fails_loudly(gateway):
    from pydantic import ValidationError
    with pytest.raises(ValidationError):
        gateway.reconfigure({"routing": {"baseline": {"threshold": 7}}}, strict=True)


def test_metadata_category_reaches_the_policy(client, gateway):
    from gateway.live_config import LiveConfig
    seen = []
    from router.loading import LoadedRouter
    gateway.policies.use(LoadedRouter("test", lambda text, category, asks: seen.append(category) or 0.0))
    gateway.apply(LiveConfig.parse({"routing": {"learned": {"thresholds": {
        "mode": "probability", "category_overrides": {"billing": "large"}}}}}))
    r = client.post(CHAT, json=chat_body(model="auto", metadata={"category": "billing"}))
    assert r.headers["x-gateway-tier"] == "large"
    assert r.headers["x-gateway-route-reason"] == "learned:category_override"
    r = client.post(CHAT, json=chat_body(model="auto", metadata={"category": "orders"}))
    assert r.headers["x-gateway-route-reason"] == "learned:below_threshold" and seen == ["orders"]


def test_what_a_request_asks_reaches_the_policy(client, gateway):
    """Tools, a schema and the turns are router features (issue 26), not only text."""
    from gateway.live_config import LiveConfig
    from router.asks import PLAIN, RequestAsks
    from router.loading import LoadedRouter
    seen = []
    gateway.policies.use(LoadedRouter("test", lambda text, category, asks: seen.append(asks) or 0.0))
    gateway.apply(LiveConfig.parse({"routing": {"learned": {"thresholds": {"mode": "probability"}}}}))
    client.post(CHAT, json=chat_body(model="auto"))
    tool = {"type": "function", "function": {"name": "refund", "parameters": {"type": "object"}}}
    turns = [{"role": "user", "content": "refund order 7"},
             {"role": "assistant", "content": None, "tool_calls": [
                 {"id": "c1", "type": "function", "function": {"name": "refund", "arguments": "{}"}}]},
             {"role": "tool", "tool_call_id": "c1", "content": "{\"ok\": true}"}]
    client.post(CHAT, json=chat_body(model="auto", messages=turns, tools=[tool], tool_choice="auto"))
    assert seen[0] == PLAIN
    assert seen[1] == RequestAsks(tools=1, forced_tool=False, schema=False, turns=3, after_tool=True)


def test_auto_routes_only_to_a_tier_whose_context_holds_the_request(client):
    """Small holds 64 tokens, large 128 (conftest): `auto` sends what only large holds there
    (reason `context`); what neither seems to hold goes to the longest context, whose
    engine counts exactly: the estimate alone never refuses a request."""
    r = client.post(CHAT, json=chat_body(model="auto", max_tokens=80))
    assert r.status_code == 200
    assert r.headers["x-gateway-tier"] == "large" and r.headers["x-gateway-route-reason"] == "context"
    r = client.post(CHAT, json=chat_body(model="auto", max_tokens=8))
    assert r.headers["x-gateway-route-reason"].startswith("baseline:")
    r = client.post(CHAT, json=chat_body(model="auto", max_tokens=500))
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
    assert "maximum context length is 128" in r.json()["error"]["message"]  # large's, not small's
