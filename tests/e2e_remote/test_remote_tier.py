"""The large tier served by a real vLLM OpenAI server elsewhere (here: loopback), through
the real gateway with the official client: the serving checks of tests/e2e/test_serving.py
on a kind=openai tier, plus what only a remote tier has (its scraped queue, the upstream
seeing the client's disconnect)."""

from __future__ import annotations

import threading
import time

import httpx
import openai
import pytest

pytestmark = pytest.mark.e2e

QUESTION = [{"role": "user", "content": "How do I reset my password?"}]
LARGE = "gemma-3-270m"
# Greedy, this runs for minutes (measured: 70 chunks in the first 8 s, still counting): a
# sampled answer may end on an early EOS before the client disconnects.
COUNTING = [{"role": "user", "content": "Count from 1 to 1000, separated by commas."}]


def _upstream_busy(upstream: str) -> float:
    """Requests the upstream vLLM is running or queueing, from its own /metrics."""
    total = 0.0
    for line in httpx.get(f"{upstream}/metrics", timeout=10).text.splitlines():
        if line.startswith(("vllm:num_requests_running", "vllm:num_requests_waiting")):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _wait_upstream_idle(upstream: str, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if _upstream_busy(upstream) == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"the upstream still generates {within_s}s after the client left")


def _tier_depth(http: httpx.Client, tier: str) -> int:
    load = http.get("/ready").json()["tiers"][tier]["load"]
    return load["running"] + load["waiting"]


@pytest.mark.parametrize("tier, served", [("small", "smollm2-135m-instruct"), ("large", LARGE)])
def test_chat_non_stream_each_tier(client, tier, served):
    raw = client.chat.completions.with_raw_response.create(
        model=tier, messages=QUESTION, max_tokens=24, temperature=0, seed=1
    )
    completion = raw.parse()
    assert raw.headers["x-gateway-tier"] == tier and completion.model == served
    assert len(completion.choices[0].message.content.split()) >= 3
    usage = completion.usage
    assert 0 < usage.completion_tokens <= 24 and usage.prompt_tokens > 5
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_the_remote_answer_is_the_upstreams_own(client, upstream):
    """The gateway relays: same greedy answer and usage as asking the upstream directly."""
    args = dict(messages=QUESTION, max_tokens=16, temperature=0)
    direct = OpenAIDirect(upstream).chat.completions.create(model=LARGE, **args)
    via = client.chat.completions.create(model="large", **args)
    assert via.choices[0].message.content == direct.choices[0].message.content
    assert via.usage.completion_tokens == direct.usage.completion_tokens
    assert via.usage.prompt_tokens == direct.usage.prompt_tokens


def OpenAIDirect(upstream: str) -> openai.OpenAI:  # noqa: N802 - reads like the client it returns
    return openai.OpenAI(base_url=f"{upstream}/v1", api_key="unused", max_retries=0, timeout=300)


def test_large_stream_with_usage_equals_non_stream(client):
    args = dict(model="large", messages=QUESTION, max_tokens=16, temperature=0)
    whole = client.chat.completions.create(**args).choices[0].message.content
    chunks = list(client.chat.completions.create(**args, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole
    assert chunks[-1].usage is not None and 0 < chunks[-1].usage.completion_tokens <= 16
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish and finish[-1] in ("stop", "length")


def test_stop_and_max_tokens_on_the_remote_tier(client):
    capped = client.chat.completions.create(model="large", messages=QUESTION, max_tokens=3, temperature=0)
    assert capped.choices[0].finish_reason == "length" and capped.usage.completion_tokens == 3
    words = client.chat.completions.create(
        model="large", temperature=0, max_tokens=40, stop=["\n"],
        messages=[{"role": "user", "content": "List three colours, one per line."}],
    )
    assert "\n" not in words.choices[0].message.content


def test_completions_on_the_remote_tier(client):
    raw = client.completions.with_raw_response.create(
        model="large", prompt="The capital of France is", max_tokens=6, temperature=0
    )
    completion = raw.parse()
    assert raw.headers["x-gateway-tier"] == "large" and completion.choices[0].text.strip()
    assert 0 < completion.usage.completion_tokens <= 6


@pytest.mark.parametrize("stream", [False, True])
def test_prompt_over_the_remote_context_400(client, stream):
    long = "please help me " * 1200  # ~3600 tokens > 2048
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="large", stream=stream, max_tokens=8,
                                       messages=[{"role": "user", "content": long}])
    assert info.value.body["code"] == "context_length_exceeded"
    assert "maximum context length is 2048" in info.value.body["message"]


def test_stream_disconnect_aborts_the_upstream_generation(gateway_url, upstream):
    body = {"model": "large", "messages": COUNTING, "max_tokens": 1500, "stream": True, "temperature": 0}
    with httpx.Client(base_url=gateway_url, timeout=60) as c:
        with c.stream("POST", "/v1/chat/completions", json=body) as r:
            assert r.status_code == 200
            lines = r.iter_lines()
            for _ in range(3):
                next(lines)
            assert _upstream_busy(upstream) >= 1
    # 1500 tokens would take over a minute: idle within seconds means the upstream aborted.
    _wait_upstream_idle(upstream, within_s=10)


def test_non_stream_disconnect_aborts_the_upstream_generation(gateway_url, upstream):
    body = {"model": "large", "messages": COUNTING, "max_tokens": 1500, "temperature": 0}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{gateway_url}/v1/chat/completions", json=body, timeout=2.0)
    _wait_upstream_idle(upstream, within_s=10)


def test_auto_sees_the_remote_tiers_queue_even_from_other_clients(gateway_url, upstream, http):
    """The router's queue depth for the remote tier is the upstream's own (scraped from its
    /metrics): a generation another client sends straight to the upstream counts too."""
    # vLLM's own `ignore_eos`: the generation surely outlasts the checks below. The other
    # client reads its stream as it comes, as clients do (vLLM's running gauge drops a
    # request whose client has stopped reading).
    body = {"model": LARGE, "messages": QUESTION, "max_tokens": 1500, "stream": True, "ignore_eos": True}
    started, stop = threading.Event(), threading.Event()

    def other_client() -> None:
        with httpx.Client(base_url=upstream, timeout=60) as c, c.stream("POST", "/v1/chat/completions", json=body) as r:
            for _ in r.iter_lines():
                started.set()
                if stop.is_set():
                    return

    reader = threading.Thread(target=other_client, daemon=True)
    reader.start()
    try:
        assert started.wait(60)
        deadline = time.monotonic() + 10
        while _tier_depth(http, "large") < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _upstream_busy(upstream) >= 1
        assert _tier_depth(http, "large") >= 1  # /ready shows the tier's load the router reads
        # The depth a decision reads is up to one scrape + one board refresh + one poll old
        # (~1 s): probe until one sees it. A probe itself can take many seconds on two cores
        # shared with both vLLMs (CI once got a single 15 s probe), so count probes, not time.
        depths: list[int] = []
        deadline = time.monotonic() + 60
        while len(depths) < 5 and max(depths, default=0) < 1 and time.monotonic() < deadline:
            probe = http.post("/v1/chat/completions", json={
                "model": "auto", "messages": [{"role": "user", "content": "Hi, where is my order?"}],
                "max_tokens": 1})
            assert probe.status_code == 200, probe.text
            depths.append(int(probe.headers["x-gateway-queue-depth"]))
        assert max(depths) >= 1, depths
    finally:
        stop.set()
        reader.join(30)
    _wait_upstream_idle(upstream, within_s=10)


def test_auto_routes_to_both_tiers(client):
    hard = ("Statement 1 | Every integral domain with characteristic 0 is infinite. Statement 2 | Every "
            "integral domain with prime characteristic is finite.\nA. True, True\nB. False, False\n"
            "C. True, False\nD. False, True\nAnswer:")
    tiers = set()
    for text in ("Hi, where is my order?", hard):
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": text}], max_tokens=4, temperature=0
        )
        raw.parse()
        tiers.add(raw.headers["x-gateway-tier"])
    assert tiers == {"small", "large"}


def test_metrics_and_health_after_the_remote_checks(http):
    text = http.get("/metrics").text
    assert 'gateway_requests_total' in text and 'tier="large"' in text
    assert http.get("/health").status_code == 200 and http.get("/ready").status_code == 200
