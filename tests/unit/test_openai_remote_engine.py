"""The remote tier's engine against an OpenAI-compatible upstream served in-process:
what it sends, what it passes back, and how each upstream failure surfaces."""

from __future__ import annotations

import asyncio
import json
import pickle
import threading
from itertools import accumulate
from pathlib import Path

import httpx
import pytest
from httpx_aiohttp import HttpxAiohttpClient
from pydantic import SecretStr, ValidationError

from engines.config import RemoteTierSettings
from engines.errors import (
    ContextLengthExceeded, EngineBusy, EngineError, EngineRequestError, EngineTimedOut, EngineUnavailable,
)
from engines.openai_remote import OpenAIRemoteEngine, RemoteSpec, _unreachable, retry_after_s
from engines.token_count import EstimatedCounter, TokenizerCounter
from engines.types import (
    AdapterSpec,
    Agentic,
    ChatTurn,
    EngineLoad,
    GenerationRequest,
    OutputFormat,
    SamplingSpec,
    ToolCall,
    ToolCallDelta,
    ToolFunction,
)
from engines.upstream_http import endpoint
from engines.upstream_load import UpstreamLoad, parse_vllm_load
from deployments.settings import MissingSecret, Settings, api_key_from_env
from tests.support.openai_upstream import VLLM_METRICS, Upstream, closed_port, serving

KEY = "sk-test-very-secret-0123456789"


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
def base_url(served):
    return served[1]


def make_spec(base_url: str, model: str = "big-upstream", **settings) -> RemoteSpec:
    return RemoteSpec(
        settings=RemoteTierSettings(base_url=base_url, api_key_env="UPSTREAM_KEY", **settings),
        model=model, max_model_len=64,
    )


@pytest.fixture
async def engine(base_url):
    built = OpenAIRemoteEngine.build(make_spec(base_url), SecretStr(KEY))
    yield built
    await built.aclose()


def chat(max_tokens: int | None = 3, **fields) -> GenerationRequest:
    return GenerationRequest(
        request_id="r1", messages=[ChatTurn(role="user", content="hello there")],
        sampling=SamplingSpec(max_tokens=max_tokens), **fields,
    )


def completion(max_tokens: int | None = 3) -> GenerationRequest:
    return GenerationRequest(request_id="r2", prompt="Once upon a time", sampling=SamplingSpec(max_tokens=max_tokens))


async def collect(stream):
    return [chunk async for chunk in stream]


class WordCounter:
    """A tokenizer stand-in: one token per word, exact (not estimated)."""

    estimated = False

    def prompt(self, request: GenerationRequest) -> int:
        return sum(len(turn.content.split()) for turn in request.messages or []) or len((request.prompt or "").split())

    def text(self, text: str) -> int:
        return len(text.split())


# ---- what goes up and what comes back ----------------------------------------------------


async def test_chat_answer_with_usage_passed_through(engine, upstream):
    result = await engine.generate(chat())
    assert result.text == "alpha beta gamma" and result.finish_reason == "length"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.estimated) == (11, 3, False)
    [call] = upstream.calls("/v1/chat/completions")
    assert call["auth"] == f"Bearer {KEY}"
    assert call["body"]["model"] == "big-upstream" and call["body"]["max_tokens"] == 3
    assert call["body"]["messages"] == [{"role": "user", "content": "hello there"}]
    assert call["body"]["stream"] is False


async def test_completion_answer(engine, upstream):
    result = await engine.generate(completion(max_tokens=2))
    assert result.text == "alpha beta" and result.usage.completion_tokens == 2
    assert upstream.calls("/v1/completions")[0]["body"]["prompt"] == "Once upon a time"


@pytest.mark.parametrize("request_of", [chat, completion], ids=["chat", "completions"])
async def test_streams_relay_deltas_and_end_with_the_upstream_usage(engine, upstream, request_of):
    chunks = await collect(engine.stream(request_of(4)))
    assert "".join(c.text for c in chunks) == "alpha beta gamma delta"
    assert chunks[0].text.startswith("alpha")  # the role-only opening event is no chunk
    assert [c.finish_reason for c in chunks][-1] == "length" and not any(c.finish_reason for c in chunks[:-1])
    assert chunks[-1].usage.model_dump() == {"prompt_tokens": 11, "completion_tokens": 4, "estimated": False}
    # Interim counts: the tokens relayed so far (events that arrived together come as one chunk).
    assert [c.usage.completion_tokens for c in chunks[:-1]] == list(accumulate(len(c.text.split()) for c in chunks[:-1]))
    body = upstream.seen[-1]["body"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


async def test_a_finished_stream_gives_its_connection_back_for_the_next_request(engine, upstream):
    # A response closed with its body's end unread closes the connection: every streamed
    # request then paid a new TCP (and, to a hosted API, TLS) handshake.
    for _ in range(3):
        assert (await collect(engine.stream(chat(3))))[-1].finish_reason == "length"
    await engine.generate(chat(2))
    peers = {call["peer"] for call in upstream.seen}
    assert len(upstream.seen) == 4 and len(peers) == 1


async def test_a_stream_cut_off_by_its_consumer_closes_the_connection(engine, upstream):
    upstream.token_delay_s = 0.05
    stream = engine.stream(chat(20))
    assert (await anext(stream)).text == "alpha"
    await stream.aclose()  # the client left: the upstream must see the disconnect
    upstream.token_delay_s = 0.0
    await collect(engine.stream(chat(2)))
    assert upstream.seen[0]["peer"] != upstream.seen[1]["peer"]


async def test_without_upstream_usage_the_counts_are_estimated_and_marked(engine, upstream):
    upstream.usage = False
    result = await engine.generate(completion(max_tokens=2))
    assert result.usage.estimated is True
    assert result.usage.prompt_tokens == EstimatedCounter().text("Once upon a time")
    assert result.usage.completion_tokens == EstimatedCounter().text("alpha beta")
    last = (await collect(engine.stream(chat(3))))[-1]
    assert last.usage.estimated is True and last.usage.completion_tokens == EstimatedCounter().text("alpha beta gamma")


async def test_without_upstream_usage_a_tokenizer_counts(base_url, upstream):
    upstream.usage = False
    engine = OpenAIRemoteEngine(make_spec(base_url), _client(base_url), SecretStr(KEY), WordCounter())
    try:
        result = await engine.generate(chat(3))
        last = (await collect(engine.stream(chat(3))))[-1]
    finally:
        await engine.aclose()
    assert result.usage.model_dump() == {"prompt_tokens": 2, "completion_tokens": 3, "estimated": False}
    assert last.usage.model_dump() == {"prompt_tokens": 2, "completion_tokens": 3, "estimated": False}


SMOLLM = Path.home() / ".cache" / "routing-gateway" / "models" / "smollm2-135m-instruct"


@pytest.mark.skipif(not (SMOLLM / "tokenizer.json").exists(), reason="embedded small model not prepared")
def test_a_configured_tokenizer_counts_prompts_with_the_chat_template():
    counter = TokenizerCounter.load(str(SMOLLM))
    templated = counter.prompt(chat())
    assert not counter.estimated and templated > counter.text("hello there") > 0
    # SmolLM2's template knows no tool turns: the turns are still counted, not refused.
    call = ToolCall(id="c1", name="get_weather", arguments='{"city": "Paris"}')
    history = [ChatTurn(role="user", content="weather?"), ChatTurn(role="assistant", content="", tool_calls=[call]),
               ChatTurn(role="tool", content='{"temp": 21}', tool_call_id="c1")]
    assert counter.prompt(GenerationRequest(request_id="t", messages=history)) > counter.text(call.arguments)


async def test_a_tokenizer_refuses_an_overlong_prompt_before_sending(base_url, upstream):
    engine = OpenAIRemoteEngine(make_spec(base_url), _client(base_url), None, WordCounter())
    try:
        with pytest.raises(ContextLengthExceeded):
            await engine.generate(chat(max_tokens=63))  # 2 prompt words + 63 > 64
    finally:
        await engine.aclose()
    assert upstream.seen == []


async def test_the_tiers_stop_strings_go_with_the_requests(base_url, upstream):
    spec = RemoteSpec(settings=RemoteTierSettings(base_url=base_url), model="big-upstream", max_model_len=64,
                      stop=("\nUser:",))
    engine = OpenAIRemoteEngine(spec, _client(base_url))
    try:
        await engine.generate(GenerationRequest(request_id="s", prompt="x", sampling=SamplingSpec(max_tokens=1, stop=["END"])))
    finally:
        await engine.aclose()
    assert upstream.seen[-1]["body"]["stop"] == ["END", "\nUser:"]
    assert upstream.seen[-1]["auth"] is None  # no api_key_env: no key sent


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_request_without_max_tokens_goes_up_capped_by_the_context_left(engine, upstream, streamed):
    request = chat(max_tokens=None)
    await (collect(engine.stream(request)) if streamed else engine.generate(request))
    prompt = EstimatedCounter().prompt(request)
    assert upstream.seen[-1]["body"]["max_tokens"] == 64 - prompt  # the spec's max_model_len is 64


async def test_a_request_without_max_tokens_goes_up_capped_by_the_gateway_limit(base_url, upstream):
    spec = RemoteSpec(settings=RemoteTierSettings(base_url=base_url), model="big-upstream", max_model_len=131072)
    engine = OpenAIRemoteEngine(spec, _client(base_url))
    try:
        await engine.generate(completion(max_tokens=None))
    finally:
        await engine.aclose()
    assert upstream.seen[-1]["body"]["max_tokens"] == 4096


# ---- upstream failures ---------------------------------------------------------------------


async def test_an_upstream_400_is_a_request_error_with_its_status_and_code(engine, upstream):
    upstream.fail_next(400, "temperature must be at most 2", code="invalid_value")
    with pytest.raises(EngineRequestError) as caught:
        await engine.generate(chat())
    assert caught.value.message == "the upstream refused the request (400, invalid_value)"
    assert caught.value.status == 400 and caught.value.data["code"] == "invalid_value"
    assert not isinstance(caught.value, ContextLengthExceeded)


async def test_an_unknown_upstream_model_is_a_404_request_error(base_url, upstream):
    engine = OpenAIRemoteEngine(make_spec(base_url, model="no-such-model"), _client(base_url))
    try:
        with pytest.raises(EngineRequestError) as caught:
            await collect(engine.stream(chat()))
    finally:
        await engine.aclose()
    assert caught.value.status == 404 and caught.value.data["code"] == "model_not_found"
    assert caught.value.data["param"] == "model" and "model_not_found" in caught.value.message


async def test_an_upstream_context_length_400_is_a_context_length_error(engine, upstream):
    upstream.fail_next(400, "This model's maximum context length is 2048 tokens. However, you requested 4000")
    with pytest.raises(ContextLengthExceeded):
        await engine.generate(chat())


async def test_a_429_is_unavailable_with_its_retry_after(engine, upstream):
    upstream.fail_next(429, "slow down", headers={"retry-after": "7"})
    with pytest.raises(EngineUnavailable) as caught:
        await engine.generate(chat())
    assert caught.value.retry_after_s == 7.0
    again = pickle.loads(pickle.dumps(caught.value))  # it crosses a Ray handle
    assert isinstance(again, EngineUnavailable) and again.retry_after_s == 7.0


@pytest.mark.parametrize("status", [500, 502, 503, 401])
@pytest.mark.parametrize("streamed", [False, True])
async def test_upstream_5xx_and_auth_failures_are_unavailable(engine, upstream, status, streamed):
    upstream.fail_next(status, "upstream trouble")
    with pytest.raises(EngineUnavailable) as caught:
        await (collect(engine.stream(chat())) if streamed else engine.generate(chat()))
    assert caught.value.retry_after_s is None and str(status) in caught.value.message


@pytest.mark.parametrize("status", [400, 401, 404, 500])
@pytest.mark.parametrize("streamed", [False, True])
async def test_upstream_error_text_never_reaches_the_error_and_is_logged_masked(
    engine, upstream, status, streamed, caplog,
):
    text = "Incorrect API key provided: sk-secret123. Authorization: Bearer sk-secret123"
    upstream.fail_next(status, text, code="invalid_api_key")
    with pytest.raises(EngineError) as caught:
        await (collect(engine.stream(chat())) if streamed else engine.generate(chat()))
    assert "secret123" not in caught.value.message and "Incorrect" not in caught.value.message
    assert str(status) in caught.value.message and "secret123" not in repr(caught.value.data)
    [record] = [r for r in caught_warnings(caplog) if "upstream failed" in r.getMessage()]
    assert "Incorrect API key provided: [redacted]" in record.getMessage()
    assert "secret123" not in caplog.text


def caught_warnings(caplog):
    return [record for record in caplog.records if record.levelname == "WARNING"]


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_refused_connection_is_unavailable(streamed):
    base_url = f"http://127.0.0.1:{closed_port()}/v1"
    engine = OpenAIRemoteEngine.build(make_spec(base_url, connect_timeout_s=2), SecretStr(KEY))
    try:
        with pytest.raises(EngineUnavailable, match="could not be reached"):
            await (collect(engine.stream(chat())) if streamed else engine.generate(chat()))
    finally:
        await engine.aclose()
    assert engine.load_now() == EngineLoad()


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_s("3") == 3.0 and retry_after_s(None) is None and retry_after_s("soon") is None
    assert retry_after_s("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0


# ---- a client that goes away -------------------------------------------------------------


async def test_closing_the_stream_closes_the_upstream_stream(engine, upstream):
    upstream.token_delay_s = 0.05
    stream = engine.stream(chat(max_tokens=200))
    assert (await anext(stream)).text == "alpha"
    assert engine.load_now().running == 1
    await stream.aclose()
    assert await asyncio.to_thread(upstream.disconnected.wait, 5)
    assert engine.load_now() == EngineLoad()


async def test_cancelling_the_consumer_closes_the_upstream_stream(engine, upstream):
    upstream.token_delay_s = 0.05
    started = asyncio.Event()

    async def consume():
        async for _ in engine.stream(completion(max_tokens=200)):
            started.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(upstream.disconnected.wait, 5)


# ---- the key stays secret ----------------------------------------------------------------------


async def test_the_key_is_in_no_repr_config_or_error(engine, upstream, monkeypatch):
    monkeypatch.setenv("UPSTREAM_KEY", KEY)
    settings = Settings(large={"kind": "openai", "openai": {"base_url": "http://up:8000/v1", "api_key_env": "UPSTREAM_KEY"}})
    key = api_key_from_env(settings.large.openai.api_key_env)
    assert key.get_secret_value() == KEY
    shown = [repr(settings), str(settings), settings.model_dump_json(), repr(key), str(key), repr(engine)]
    upstream.fail_next(401, "invalid api key")
    with pytest.raises(EngineUnavailable) as caught:
        await engine.generate(chat())
    shown += [str(caught.value), repr(caught.value), repr(caught.value.data)]
    assert not any(KEY in text for text in shown)


def test_a_missing_key_variable_is_named_and_a_pasted_key_is_not_echoed(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(MissingSecret, match="NO_SUCH_KEY_VAR"):
        api_key_from_env("NO_SUCH_KEY_VAR")
    with pytest.raises(ValidationError) as caught:
        Settings(large={"kind": "openai", "openai": {"base_url": "http://up/v1", "api_key_env": KEY}})
    assert KEY not in str(caught.value) and "api_key_env" in str(caught.value)


def test_kind_openai_needs_a_base_url():
    with pytest.raises(ValidationError, match="base_url"):
        Settings(large={"kind": "openai"})
    with pytest.raises(ValidationError, match="http"):
        Settings(large={"kind": "openai", "openai": {"base_url": "up:8000"}})


def test_a_remote_tier_is_named_after_its_upstream_model_and_drops_the_embedded_defaults():
    large = Settings(large={"kind": "openai", "openai": {"base_url": "http://up/v1", "upstream_model": "org/big-7b"}}).large
    assert (large.served_name, large.upstream_model, large.stop) == ("big-7b", "org/big-7b", [])
    small = Settings(small={"kind": "openai", "openai": {"base_url": "http://up/v1"}}).small
    assert small.enable_lora is False and small.upstream_model == small.served_name


# ---- adapters on a remote vLLM tier --------------------------------------------------------


async def test_adapters_map_to_the_upstreams_lora_model_names(base_url, upstream):
    spec = make_spec(base_url, adapter_models={"refund": "lora-refund"})
    engine = OpenAIRemoteEngine(spec, _client(base_url))
    mapped = AdapterSpec(name="refund-v3", path="/adapters/refund-v3", domain="refund")
    unmapped = AdapterSpec(name="travel-v1", path="/adapters/travel-v1", domain="travel")
    try:
        await engine.add_adapter(mapped)
        with pytest.raises(EngineRequestError, match="travel-v1"):
            await engine.add_adapter(unmapped)
        assert await engine.adapters() == {"refund-v3"}
        await engine.generate(chat(adapter=mapped))
        assert upstream.seen[-1]["body"]["model"] == "lora-refund"
        with pytest.raises(EngineRequestError):
            await engine.generate(chat(adapter=unmapped))
        assert upstream.seen[-1]["body"]["model"] == "travel-v1"
    finally:
        await engine.aclose()


# ---- load: in flight here, or the upstream vLLM's own queue ----------------------------------


def test_vllm_metrics_are_summed_over_their_label_sets():
    assert parse_vllm_load(VLLM_METRICS) == EngineLoad(running=5, waiting=4)
    assert parse_vllm_load("vllm:num_requests_waiting 2\n") == EngineLoad(running=0, waiting=2)
    with pytest.raises(ValueError):
        parse_vllm_load("# nothing here\nprocess_cpu_seconds_total 3.0\n")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Failures:
    def __init__(self) -> None:
        self.failed_with: list[BaseException] = []

    def failed(self, exc: BaseException) -> None:
        self.failed_with.append(exc)

    def succeeded(self) -> None:
        self.failed_with.clear()


async def test_the_load_is_the_scraped_queue_while_fresh_then_the_in_flight_count(base_url, upstream):
    upstream.metrics = VLLM_METRICS
    clock, failures = Clock(), Failures()
    client = _client(base_url)
    scraper = UpstreamLoad(client, base_url.removesuffix("/v1") + "/metrics", 0.5, 3.0, failures, clock)
    engine = OpenAIRemoteEngine(make_spec(base_url), client, upstream=scraper)
    try:
        assert engine.load_now() == EngineLoad()  # nothing scraped yet
        await scraper.refresh()
        assert await engine.load() == EngineLoad(running=5, waiting=4)
        clock.now += 3.5
        assert engine.load_now() == EngineLoad()  # stale: in flight here (none)
        upstream.metrics_status = 500
        await scraper.refresh()
        assert engine.load_now() == EngineLoad() and len(failures.failed_with) == 1
        upstream.metrics_status, upstream.metrics = 200, "vllm:num_requests_running 1\n"
        await scraper.refresh()
        upstream.token_delay_s = 0.05
        streams = [engine.stream(chat(max_tokens=50)) for _ in range(3)]
        for stream in streams:
            await anext(stream)
        # The scrape lags behind the three in flight here: never fewer than those.
        assert engine.load_now() == EngineLoad(running=1, waiting=2)
        for stream in streams:
            await stream.aclose()
    finally:
        await engine.aclose()
    assert failures.failed_with == []


def _client(base_url: str):
    import httpx

    return httpx.AsyncClient(base_url=base_url, timeout=5)


# ---- what an agent asks goes up unchanged, and every choice comes back -------------------------

WEATHER = ToolFunction(
    name="get_weather", description="The weather in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}, strict=True,
)
WEATHER_WIRE = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city", "strict": True,
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}}
CALL = ToolCall(id="call-0", name="get_weather", arguments='{"city": "Paris"}')


def agentic_chat(max_tokens: int = 3, **fields) -> GenerationRequest:
    return chat(max_tokens, agentic=Agentic(**fields))


def agentic_completion(max_tokens: int = 3, **fields) -> GenerationRequest:
    return GenerationRequest(request_id="c", prompt="x", sampling=SamplingSpec(max_tokens=max_tokens),
                             agentic=Agentic(**fields))


BOTH = pytest.mark.parametrize("request_of", [agentic_chat, agentic_completion], ids=["chat", "completions"])


@pytest.mark.parametrize("choice, wire", [
    ("none", "none"), ("auto", "auto"), ("required", "required"),
    ("get_weather", {"type": "function", "function": {"name": "get_weather"}}),
])
async def test_tools_and_tool_choice_reach_the_upstream_as_sent(engine, upstream, choice, wire):
    bare = ToolFunction(name="now")  # fields it leaves out are not sent as nulls
    await engine.generate(agentic_chat(tools=[WEATHER, bare], tool_choice=choice, parallel_tool_calls=False))
    body = upstream.seen[-1]["body"]
    assert body["tools"] == [WEATHER_WIRE, {"type": "function", "function": {"name": "now"}}]
    assert body["tool_choice"] == wire and body["parallel_tool_calls"] is False


async def test_plain_requests_send_none_of_the_agent_fields(engine, upstream):
    await engine.generate(chat())
    await engine.generate(completion())
    for call in upstream.seen:
        assert not {"tools", "tool_choice", "parallel_tool_calls", "response_format", "n", "logprobs",
                    "top_logprobs"} & set(call["body"])


@pytest.mark.parametrize("output, wire", [
    (OutputFormat(type="json_object"), {"type": "json_object"}),
    (OutputFormat(type="json_schema", name="city", json_schema={"type": "object"}, strict=True),
     {"type": "json_schema", "json_schema": {"name": "city", "schema": {"type": "object"}, "strict": True}}),
    (OutputFormat(type="json_schema", name="city", json_schema={"type": "object"}),
     {"type": "json_schema", "json_schema": {"name": "city", "schema": {"type": "object"}}}),
])
@BOTH
async def test_response_format_reaches_the_upstream_as_sent(engine, upstream, output, wire, request_of):
    await engine.generate(request_of(output=output))
    assert upstream.seen[-1]["body"]["response_format"] == wire


async def test_history_with_tool_calls_and_tool_turns_goes_up_in_openais_shape(engine, upstream):
    turns = [
        ChatTurn(role="user", content="weather in Paris?"),
        ChatTurn(role="assistant", content="", tool_calls=[CALL]),
        ChatTurn(role="tool", content='{"temp": 21}', tool_call_id="call-0"),
        ChatTurn(role="assistant", content="Let me check again.", tool_calls=[CALL]),
    ]
    await engine.generate(GenerationRequest(request_id="h", messages=turns, sampling=SamplingSpec(max_tokens=2)))
    wire_call = {"id": "call-0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    assert upstream.seen[-1]["body"]["messages"] == [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [wire_call]},
        {"role": "tool", "content": '{"temp": 21}', "tool_call_id": "call-0"},
        {"role": "assistant", "content": "Let me check again.", "tool_calls": [wire_call]},
    ]


async def test_tools_on_a_completion_are_refused_before_sending(engine, upstream):
    with pytest.raises(EngineRequestError) as caught:
        await engine.generate(agentic_completion(tools=[WEATHER]))
    assert caught.value.data["param"] == "tools" and upstream.seen == []


async def test_a_forced_tool_call_comes_back(engine, upstream):
    result = await engine.generate(agentic_chat(tools=[WEATHER], tool_choice="required"))
    assert (result.text, result.finish_reason, result.tool_calls) == ("", "tool_calls", [CALL])
    assert result.usage.completion_tokens == 2


async def test_without_upstream_usage_tool_call_arguments_are_counted(engine, upstream):
    upstream.usage = False
    result = await engine.generate(agentic_chat(tools=[WEATHER], tool_choice="get_weather"))
    assert result.usage.estimated and result.usage.completion_tokens == EstimatedCounter().text(
        "get_weather" + CALL.arguments
    )


@BOTH
async def test_n_choices_come_back_choice_0_on_top(engine, upstream, request_of):
    result = await engine.generate(request_of(n=3))
    assert upstream.seen[-1]["body"]["n"] == 3
    assert [(c.index, c.text) for c in result.choices()] == [
        (0, "alpha beta gamma"), (1, "beta gamma delta"), (2, "gamma delta epsilon"),
    ]
    assert result.usage.completion_tokens == 9  # the usage of all choices


async def test_chat_logprobs_are_asked_for_and_come_back(engine, upstream):
    result = await engine.generate(agentic_chat(max_tokens=2, logprobs=2))
    body = upstream.seen[-1]["body"]
    assert (body["logprobs"], body["top_logprobs"]) == (True, 2)
    assert [lp.token for lp in result.logprobs] == ["alpha", "beta"]
    first = result.logprobs[0]
    assert first.logprob == -0.5 and first.bytes == list(b"alpha")
    assert [(top.token, top.logprob) for top in first.top] == [("alpha", -0.5), ("omega", -2.0)]


async def test_completion_logprobs_are_asked_for_and_come_back(engine, upstream):
    result = await engine.generate(agentic_completion(max_tokens=2, logprobs=1))
    assert upstream.seen[-1]["body"]["logprobs"] == 1 and "top_logprobs" not in upstream.seen[-1]["body"]
    assert [(lp.token, lp.logprob, [t.token for t in lp.top]) for lp in result.logprobs] == [
        ("alpha", -0.5, ["alpha"]), ("beta", -0.5, ["beta"]),
    ]


async def test_a_streamed_tool_call_comes_as_deltas(engine, upstream):
    chunks = await collect(engine.stream(agentic_chat(tools=[WEATHER], tool_choice="get_weather")))
    deltas = [delta for chunk in chunks for delta in chunk.tool_calls]
    assert deltas[0] == ToolCallDelta(index=0, id="call-0", name="get_weather", arguments="")
    assert "".join(delta.arguments for delta in deltas) == CALL.arguments
    assert all(delta.index == 0 for delta in deltas) and "".join(c.text for c in chunks) == ""
    assert [c.finish_reason for c in chunks] == [None, None, "tool_calls"]
    assert chunks[-1].usage.model_dump() == {"prompt_tokens": 11, "completion_tokens": 2, "estimated": False}


@BOTH
async def test_streamed_n_choices_are_told_apart_by_index(engine, upstream, request_of):
    chunks = await collect(engine.stream(request_of(n=2)))
    texts = {i: "".join(c.text for c in chunks if c.index == i) for i in (0, 1)}
    assert texts == {0: "alpha beta gamma", 1: "beta gamma delta"}
    assert sorted(c.index for c in chunks if c.finish_reason) == [0, 1]
    assert chunks[-1].finish_reason == "length" and chunks[-1].usage.completion_tokens == 6
    assert not chunks[-1].usage.estimated


@BOTH
async def test_streamed_logprobs_come_with_each_chunk(engine, upstream, request_of):
    chunks = await collect(engine.stream(request_of(logprobs=1)))
    assert [lp.token for c in chunks for lp in c.logprobs] == ["alpha", "beta", "gamma"]
    assert all(len(c.logprobs) == len(c.text.split()) for c in chunks)  # a joined chunk keeps each token's
    assert all(lp.logprob == -0.5 and len(lp.top) == 1 for c in chunks for lp in c.logprobs)
    # Interim counts go by the logprobs' tokens; the last is the upstream's own.
    assert [c.usage.completion_tokens for c in chunks] == list(accumulate(len(c.logprobs) for c in chunks))
    assert chunks[-1].usage.completion_tokens == 3


@BOTH
async def test_a_stream_passes_on_each_read_as_it_comes(engine, upstream, request_of):
    """Joining only what arrived together: a token the upstream sent alone is relayed at once,
    not held for the next one (the upstream sends the rest only after it is relayed)."""
    upstream.gate = threading.Event()
    stream = engine.stream(request_of(logprobs=1))
    try:
        first = await asyncio.wait_for(anext(stream), 5.0)
        assert first.text == "alpha" and [lp.token for lp in first.logprobs] == ["alpha"]
        upstream.gate.set()
        rest = [chunk async for chunk in stream]
    finally:
        upstream.gate.set()
        await stream.aclose()
    assert "".join(c.text for c in [first, *rest]) == "alpha beta gamma"


async def test_events_that_arrive_together_are_joined_per_choice_in_order():
    """One network read with several events: plain increments of a choice become one chunk,
    a finishing one and tool calls stay apart, choices are never mixed."""
    import httpx

    from engines.openai_remote import _event_batches, _Relay

    def sse(*choices):
        return "data: " + json.dumps({"choices": list(choices)}) + "\n\n"

    raw = "".join([
        sse({"index": 0, "delta": {"content": "a"}}), sse({"index": 0, "delta": {"content": "b"}}),
        sse({"index": 1, "delta": {"content": "x"}}), sse({"index": 0, "delta": {"content": "c"}}),
        sse({"index": 1, "delta": {"content": "y"}, "finish_reason": "stop"}),
        sse({"index": 0, "delta": {"content": "d"}}), sse({"index": 0, "delta": {"content": "e"}, "finish_reason": "stop"}),
    ]) + "data: [DONE]\n\n"
    chunks = await collect(_Relay(EstimatedCounter(), 1).chunks(_event_batches(httpx.Response(200, content=raw.encode()))))
    assert [(c.index, c.text, c.finish_reason) for c in chunks] == [
        (0, "ab", None), (1, "x", None), (0, "cd", None), (1, "y", "stop"), (0, "e", "stop"),
    ]


async def test_a_stream_that_leaves_a_choice_unfinished_is_an_error(engine, upstream):
    from engines.openai_remote import _Relay

    async def events():
        yield [{"choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": "stop"},
                            {"index": 1, "delta": {"content": "b"}, "finish_reason": None}]}]

    with pytest.raises(EngineError, match="without a finish reason"):
        await collect(_Relay(EstimatedCounter(), 1).chunks(events()))


async def test_an_error_event_mid_stream_is_summarised_not_echoed(caplog):
    import httpx

    from engines.openai_remote import _event_batches

    raw = b'data: {"error": {"message": "bad key sk-secret123", "code": "upstream_crash"}}\n\n'
    with pytest.raises(EngineError) as caught:
        await collect(_event_batches(httpx.Response(200, content=raw)))
    assert caught.value.message == "the upstream failed mid-stream (upstream_crash)"
    assert "secret123" not in caplog.text and "bad key [redacted]" in caplog.text


@pytest.mark.parametrize(("exc", "saturated", "kind"), [
    (httpx.ReadTimeout("slow"), True, EngineTimedOut),  # an answer slower than timeout_s
    (httpx.PoolTimeout("pool"), False, EngineBusy),
    # aiohttp's pool reports its wait for a connection as a connect timeout: with more requests
    # in flight than connections it is the pool's wait, with fewer the upstream's silence.
    (httpx.ConnectTimeout("wait"), True, EngineBusy),
    (httpx.ConnectTimeout("wait"), False, EngineUnavailable),
    (httpx.ConnectError("refused"), True, EngineUnavailable),
])
def test_timeouts_are_told_apart_by_whose_they_are(exc, saturated, kind):
    error = _unreachable(exc, saturated)
    assert type(error) is kind


async def test_an_upstream_cookie_never_goes_back_with_a_later_request(engine, upstream):
    # One client serves every caller of the replica: a cookie set on one caller's answer
    # must not travel with the next caller's request.
    upstream.fail_next(503, "warming up", headers={"set-cookie": "lb=caller-one; Path=/"})
    with pytest.raises(EngineUnavailable):
        await engine.generate(chat())
    await engine.generate(chat())
    assert [call["cookie"] for call in upstream.calls("/v1/chat/completions")] == [None, None]


async def test_the_remote_tier_pools_connections_with_aiohttp(base_url):
    engine = OpenAIRemoteEngine.build(make_spec(base_url), SecretStr(KEY))
    try:
        assert isinstance(engine._client, HttpxAiohttpClient)
    finally:
        await engine.aclose()


@pytest.mark.parametrize("base", ["http://up.example/v1", "http://up.example/v1/", "https://up.example:8443/a/b"])
def test_an_endpoint_joins_the_base_url_as_httpx_does(base):
    client = httpx.AsyncClient(base_url=base)
    for path in ("/chat/completions", "/completions", "/models"):
        assert endpoint(client.base_url, path) == client.build_request("POST", path).url
