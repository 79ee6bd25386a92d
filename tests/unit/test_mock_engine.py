"""The mock engine for load tests: its pacing, its text, its counts and its queue.

Timing is asserted loosely: the tests share two busy cores."""

from __future__ import annotations

import asyncio
import time

import pytest

from engines.config import MockTierSettings
from engines.errors import ContextLengthExceeded, EngineRequestError
from engines.mock import MockEngine, MockSpec
from engines.types import (
    Agentic,
    ChatTurn,
    EngineLoad,
    GenerationRequest,
    OutputFormat,
    SamplingSpec,
    ToolFunction,
)


def mock(max_model_len: int = 512, **settings) -> MockEngine:
    return MockEngine(MockSpec(settings=MockTierSettings(**settings), max_model_len=max_model_len))


def ask(prompt: str = "tell me a story", max_tokens: int | None = None) -> GenerationRequest:
    return GenerationRequest(request_id="m", prompt=prompt, sampling=SamplingSpec(max_tokens=max_tokens))


async def test_first_token_after_ttft_then_one_every_itl():
    engine = mock(ttft_s=0.2, itl_s=0.05, output_tokens=9)
    started = time.monotonic()
    arrivals = [time.monotonic() - started async for _ in engine.stream(ask())]
    assert len(arrivals) == 9
    assert 0.2 <= arrivals[0] < 1.0
    # Paced against the start: the whole answer takes ttft + 8 itl, late wake-ups included.
    assert 0.6 <= arrivals[-1] < 2.0


async def test_the_same_prompt_gets_the_same_text():
    engine = mock(ttft_s=0, itl_s=0, output_tokens=12)
    first, again = await engine.generate(ask()), await engine.generate(ask())
    other = await engine.generate(ask("another prompt entirely"))
    assert first.text == again.text != other.text
    assert len(first.text.split()) == 12
    chat = GenerationRequest(request_id="c", messages=[ChatTurn(role="user", content="tell me a story")])
    assert (await engine.generate(chat)).text != first.text  # the role is part of what is hashed


async def test_usage_counts_prompt_words_and_tokens_produced():
    engine = mock(ttft_s=0, itl_s=0, output_tokens=10)
    chunks = [chunk async for chunk in engine.stream(ask(max_tokens=4))]
    assert [c.usage.completion_tokens for c in chunks] == [1, 2, 3, 4]
    assert chunks[-1].usage.prompt_tokens == 4 and not chunks[-1].usage.estimated
    assert [c.finish_reason for c in chunks] == [None, None, None, "length"]
    assert (await engine.generate(ask())).finish_reason == "stop"  # its natural length


async def test_over_its_context_it_refuses():
    with pytest.raises(ContextLengthExceeded):
        await mock(max_model_len=8, output_tokens=8).generate(ask())


async def test_load_is_running_up_to_max_concurrency_and_waiting_beyond():
    engine = mock(ttft_s=0.3, itl_s=0.0, output_tokens=1, max_concurrency=2)
    tasks = [asyncio.create_task(engine.generate(ask(str(i)))) for i in range(5)]
    await asyncio.sleep(0.1)
    assert engine.load_now() == EngineLoad(running=2, waiting=3)
    await asyncio.gather(*tasks)
    assert await engine.load() == EngineLoad()


async def test_a_closed_or_cancelled_request_frees_its_slot():
    engine = mock(ttft_s=0.0, itl_s=0.05, output_tokens=100, max_concurrency=1)
    stream = engine.stream(ask())
    await anext(stream)
    waiting = asyncio.create_task(engine.generate(ask("second")))
    await asyncio.sleep(0.05)
    assert engine.load_now() == EngineLoad(running=1, waiting=1)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    await stream.aclose()
    assert engine.load_now() == EngineLoad()


# ---- what an agent asks: n answers; tools, JSON output and logprobs refused ---------------------


def asking(max_tokens: int = 3, **agentic) -> GenerationRequest:
    return GenerationRequest(request_id="a", prompt="tell me a story", sampling=SamplingSpec(max_tokens=max_tokens),
                             agentic=Agentic(**agentic))


async def test_n_answers_each_with_its_own_seed_choice_0_as_without_n():
    engine = mock(ttft_s=0, itl_s=0, output_tokens=10)
    result = await engine.generate(asking(n=3))
    texts = [choice.text for choice in result.choices()]
    assert texts[0] == (await engine.generate(asking())).text and len(set(texts)) == 3
    assert [c.index for c in result.choices()] == [0, 1, 2]
    assert all(c.finish_reason == "length" and len(c.text.split()) == 3 for c in result.choices())
    assert result.usage.completion_tokens == 9 and result.usage.prompt_tokens == 4


async def test_streamed_n_answers_come_a_token_of_each_per_step():
    chunks = [chunk async for chunk in mock(ttft_s=0, itl_s=0).stream(asking(max_tokens=2, n=2))]
    assert [c.index for c in chunks] == [0, 1, 0, 1]
    assert [c.usage.completion_tokens for c in chunks] == [1, 2, 3, 4]
    assert [c.finish_reason for c in chunks] == [None, None, "length", "length"]


@pytest.mark.parametrize("agentic, param", [
    ({"tools": [ToolFunction(name="f")]}, "tools"),
    ({"tools": [ToolFunction(name="f")], "tool_choice": "required"}, "tools"),
    ({"output": OutputFormat(type="json_object")}, "response_format"),
    ({"output": OutputFormat(type="json_schema", name="x", json_schema={"type": "object"})}, "response_format"),
    ({"logprobs": 0}, "logprobs"),
])
@pytest.mark.parametrize("streamed", [False, True])
async def test_what_it_cannot_honour_is_refused_naming_the_field(agentic, param, streamed):
    engine = mock(ttft_s=0, itl_s=0)
    with pytest.raises(EngineRequestError) as caught:
        if streamed:
            await anext(engine.stream(asking(**agentic)))
        else:
            await engine.generate(asking(**agentic))
    assert caught.value.data["param"] == param and caught.value.status == 400
    assert engine.load_now() == EngineLoad()


async def test_tools_it_is_told_not_to_call_are_no_reason_to_refuse():
    result = await mock(ttft_s=0, itl_s=0).generate(asking(tools=[ToolFunction(name="f")], tool_choice="none"))
    assert result.tool_calls == [] and result.text
