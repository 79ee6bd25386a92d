"""`/v1/responses` as a translation over the chat path: the request becomes a chat body the
chat wire model accepts, and the answer (a body, or events) parses with the openai SDK's own
types, event by event and through the SDK's own stream accumulator."""

from __future__ import annotations

from typing import AsyncIterator

import pytest
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseErrorEvent, ResponseStreamEvent
from pydantic import TypeAdapter, ValidationError

from engines.types import (
    GenerationChunk,
    GenerationRequest,
    GenerationResult,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    TopLogprob,
    Usage,
)
from gateway.bodies import validated
from gateway.catalog import ModelTarget
from gateway.errors import InvalidRequest, ServiceUnavailable
from gateway.openai_responses import ResponsesEncoder
from wire.responses import ResponsesRequest, responses_param, to_chat
from wire.chat import ChatCompletionRequest
from gateway.state import RequestState
from router.decision import RoutingQuery

EVENTS = TypeAdapter(ResponseStreamEvent)
WEATHER = {
    "type": "function", "name": "weather", "description": "the weather",
    "parameters": {"type": "object"},
}
OSLO = '{"city":"Oslo"}'


def request(**fields) -> ResponsesRequest:
    return ResponsesRequest.model_validate({"model": "auto", "input": "hi", **fields})


def chat(**fields) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(to_chat(request(**fields)))


def state(model_name: str = "small-model") -> RequestState:
    body = ChatCompletionRequest.model_validate({"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
    return RequestState(
        request_id="r1", endpoint="chat", body=body, key=None, target=ModelTarget(tier=None),
        query=RoutingQuery(text="hi"), generation=GenerationRequest(request_id="r1"), started=0.0,
        model_name=model_name,
    )


def encoder(**fields) -> ResponsesEncoder:
    return ResponsesEncoder(request(**fields), clock=lambda: 1000.0)


def usage(prompt: int = 3, completion: int = 2) -> Usage:
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


def answer(text: str = "", reason="stop", **fields) -> GenerationResult:
    return GenerationResult(text=text, finish_reason=reason, usage=usage(), **fields)


# ---- the request becomes a chat body -------------------------------------------------


def test_a_string_input_and_instructions_become_system_then_user():
    body = to_chat(request(
        instructions="be brief", max_output_tokens=7, temperature=0.2, metadata={"category": "billing"},
    ))
    assert body == {
        "model": "auto", "stream": False, "max_tokens": 7, "temperature": 0.2,
        "metadata": {"category": "billing"},
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
    }
    chat = ChatCompletionRequest.model_validate(body)
    assert chat.requested_max_tokens() == 7 and chat.category() == "billing"


def test_items_become_turns_and_calls_join_the_assistant_turn():
    text = [{"type": "input_text", "text": "weather in "}, {"type": "input_text", "text": "Oslo"}]
    answered = [{"type": "output_text", "text": "Checking.", "annotations": [], "logprobs": []}]
    body = to_chat(request(tools=[WEATHER], input=[
        {"role": "developer", "content": "use tools"},
        {"type": "message", "role": "user", "content": text},
        # an earlier answer sent back as it was answered (the stateless multi-turn pattern)
        {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed", "content": answered},
        {"type": "function_call", "id": "fc_1", "call_id": "call_a", "name": "weather",
         "arguments": OSLO, "status": "completed"},
        {"type": "function_call", "call_id": "call_b", "name": "weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_a", "output": "sunny"},
        {"type": "function_call_output", "call_id": "call_b", "output": [{"type": "input_text", "text": "rain"}]},
    ]))
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["developer", "user", "assistant", "tool", "tool"]
    assert messages[1]["content"] == "weather in Oslo" and messages[2]["content"] == "Checking."
    assert [c["id"] for c in messages[2]["tool_calls"]] == ["call_a", "call_b"]
    assert messages[2]["tool_calls"][0]["function"] == {"name": "weather", "arguments": OSLO}
    assert messages[3] == {"role": "tool", "tool_call_id": "call_a", "content": "sunny"}
    assert messages[4]["content"] == "rain"
    turns = ChatCompletionRequest.model_validate(body).turns()
    assert [t.role for t in turns] == ["system", "user", "assistant", "tool", "tool"]
    assert turns[2].tool_calls and turns[2].tool_calls[1].id == "call_b"


def test_a_call_with_no_text_before_it_is_an_assistant_turn_of_its_own():
    body = to_chat(request(tools=[WEATHER], input=[
        {"role": "user", "content": "hi"},
        {"type": "function_call", "call_id": "c", "name": "weather", "arguments": "{}"},
    ]))
    call = {"id": "c", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
    assert body["messages"][1] == {"role": "assistant", "content": None, "tool_calls": [call]}
    ChatCompletionRequest.model_validate(body)


def test_tools_choice_and_format_become_the_chat_fields():
    schema = {"name": "out", "schema": {"type": "object"}, "strict": True}
    body = to_chat(request(
        tools=[{**WEATHER, "strict": True}], tool_choice={"type": "function", "name": "weather"},
        parallel_tool_calls=False, text={"format": {"type": "json_schema", **schema}},
    ))
    function = {k: v for k, v in WEATHER.items() if k != "type"}
    assert body["tools"] == [{"type": "function", "function": {**function, "strict": True}}]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "weather"}}
    assert body["response_format"] == {"type": "json_schema", "json_schema": schema}
    agentic = ChatCompletionRequest.model_validate(body).agentic()
    assert agentic.tool_choice == "weather" and not agentic.parallel_tool_calls
    assert agentic.output is not None and agentic.output.json_schema == {"type": "object"}
    assert agentic.output.strict


@pytest.mark.parametrize("fields, logprobs", [
    ({"include": ["message.output_text.logprobs"]}, 0),
    ({"include": ["message.output_text.logprobs"], "top_logprobs": 3}, 3),
    ({"top_logprobs": 2}, 2),
    ({"include": []}, None),
])
def test_logprobs_are_asked_by_include_or_top_logprobs(fields, logprobs):
    assert chat(**fields).agentic().logprobs == logprobs


def test_json_object_mode_and_required_choice_pass_through():
    body = to_chat(request(text={"format": {"type": "json_object"}}, tools=[WEATHER], tool_choice="required"))
    assert body["response_format"] == {"type": "json_object"} and body["tool_choice"] == "required"
    assert to_chat(request(text={"format": {"type": "text"}}))["response_format"] == {"type": "text"}
    assert "response_format" not in to_chat(request(text={}))


def test_gateway_extensions_and_stream_are_passed_on():
    body = to_chat(request(grounding=True, gate=False, stream=True, user="u", store=False))
    assert (body["grounding"], body["gate"], body["stream"], body["user"]) == (True, False, True, "u")


# ---- refusals: named, before any work ----------------------------------------------

IMAGE = [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]


@pytest.mark.parametrize("fields, param, words", [
    ({"previous_response_id": "resp_1"}, "previous_response_id", "stateless; send the conversation in `input`"),
    ({"store": True}, "store", "keeps no responses"),
    ({"reasoning": {"effort": "low"}}, "reasoning", "Unrecognized request argument"),
    ({"tools": [{"type": "web_search"}]}, "tools", "only function tools"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "name": "x"}}, "tool_choice", "not among the tools"),
    ({"tool_choice": "required"}, "tool_choice", "needs tools"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input.0", "item references"),
    ({"input": IMAGE}, "input.0.message.content.0.type", ""),
    ({"truncation": "auto"}, "truncation", ""),
    ({"include": ["reasoning.encrypted_content"]}, "include.0", ""),
    ({"input": []}, "input", ""),
])
def test_what_cannot_be_honoured_is_refused_by_name(fields, param, words):
    with pytest.raises(ValidationError):
        request(**fields)
    with pytest.raises(InvalidRequest) as refused:
        validated(ResponsesRequest, {"model": "auto", "input": "hi", **fields})
    assert refused.value.param == param and words in refused.value.message


def test_previous_response_id_null_and_store_false_are_fine():
    assert request(previous_response_id=None, store=False).previous_response_id is None


@pytest.mark.parametrize("chat_param, param", [
    ("messages.2.content", "input"), ("max_tokens", "max_output_tokens"),
    ("max_completion_tokens", "max_output_tokens"), ("response_format.json_schema.name", "text.format"),
    ("tools.0.function.name", "tools.0.name"), ("tool_choice.function.name", "tool_choice.name"),
    ("grounding", "grounding"), (None, None),
])
def test_chat_params_name_the_responses_field(chat_param, param):
    assert responses_param(chat_param) == param


# ---- the body ------------------------------------------------------------------------


def test_a_text_answer_parses_as_the_sdk_response():
    enc = encoder(instructions="be brief", metadata={"category": "billing"})
    response = Response.model_validate(enc.body(state(), answer("Hello.")))
    assert (response.id, response.status, response.model) == ("resp_r1", "completed", "small-model")
    assert response.output_text == "Hello." and response.output[0].id == "msg_r1"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (3, 2, 5)
    assert response.instructions == "be brief" and response.metadata == {"category": "billing"}
    assert response.tool_choice == "auto"
    assert response.text is not None and response.text.format is not None
    assert response.text.format.type == "text"
    # Nothing outside the SDK's types.
    assert not response.model_extra and not response.output[0].model_extra


def test_tool_calls_are_function_call_items():
    calls = [
        ToolCall(id="call_a", name="weather", arguments=OSLO),
        ToolCall(id="call_b", name="weather", arguments="{}"),
    ]
    enc = encoder(tools=[WEATHER], tool_choice="required")
    body = enc.body(state(), answer(reason="tool_calls", tool_calls=calls))
    response = Response.model_validate(body)
    assert [item.type for item in response.output] == ["function_call", "function_call"]
    first = response.output[0]
    assert first.type == "function_call"
    assert (first.id, first.call_id, first.name, first.arguments) == ("fc_r1_0", "call_a", "weather", OSLO)
    assert first.status == "completed"
    assert response.tools[0].type == "function" and response.tool_choice == "required"


def test_a_cut_answer_is_incomplete_by_max_output_tokens():
    response = Response.model_validate(encoder(max_output_tokens=2).body(state(), answer("Hel", "length")))
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output[0].status == "incomplete" and response.max_output_tokens == 2


def test_logprobs_go_with_the_text():
    logprobs = [TokenLogprob(token="Hi", logprob=-0.1, top=[TopLogprob(token="Hey", logprob=-2.0)])]
    body = encoder(top_logprobs=1).body(state(), answer("Hi", logprobs=logprobs))
    text = Response.model_validate(body).output[0].content[0]  # type: ignore[union-attr]
    assert text.logprobs is not None and text.logprobs[0].bytes == list(b"Hi")
    assert text.logprobs[0].top_logprobs[0].token == "Hey"


def test_a_json_schema_format_is_echoed_with_its_schema():
    fmt = {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}
    body = encoder(text={"format": fmt}).body(state(), answer("{}"))
    assert body["text"]["format"]["schema"] == {"type": "object"}
    assert Response.model_validate(body).text.format.type == "json_schema"  # type: ignore[union-attr]


def test_an_answer_sent_back_as_input_is_accepted():
    """The stateless multi-turn pattern: `input = earlier input + response.output + results`."""
    calls = [ToolCall(id="c", name="weather", arguments="{}")]
    body = encoder(tools=[WEATHER]).body(state(), answer("Checking.", "tool_calls", tool_calls=calls))
    output = [item.model_dump(exclude_unset=True) for item in Response.model_validate(body).output]
    items = [
        {"role": "user", "content": "weather?"}, *output,
        {"type": "function_call_output", "call_id": "c", "output": "sunny"},
    ]
    assert [t.role for t in chat(input=items, tools=[WEATHER]).turns()] == ["user", "assistant", "tool"]


# ---- the stream ------------------------------------------------------------------------


class Chunks:
    """An engine stream: yields chunks, then optionally fails; records that it was closed."""

    def __init__(self, chunks: list[GenerationChunk], fail: Exception | None = None) -> None:
        self._chunks, self._fail, self.closed = chunks, fail, False

    def __aiter__(self) -> AsyncIterator[GenerationChunk]:
        return self

    async def __anext__(self) -> GenerationChunk:
        if self._chunks:
            return self._chunks.pop(0)
        if self._fail is not None:
            raise self._fail
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self.closed = True


def chunk(text: str = "", reason=None, calls=(), tokens: int = 1) -> GenerationChunk:
    return GenerationChunk(text=text, finish_reason=reason, usage=usage(3, tokens), tool_calls=list(calls))


async def stream(
    enc: ResponsesEncoder, chunks: list[GenerationChunk], fail: Exception | None = None
) -> tuple[list, Chunks]:
    """The events, each parsed with the SDK's event union; numbered from 0."""
    rest = Chunks(chunks[1:], fail)
    events = []
    async for frame in enc.events(state(), chunks[0], rest):
        head, data = frame.decode().removesuffix("\n\n").split("\n")
        event = EVENTS.validate_json(data.removeprefix("data: "))
        assert head == f"event: {event.type}"
        events.append(event)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    return events, rest


def accumulated(events: list) -> Response:
    """What the SDK's own stream helper makes of the events."""
    sdk = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in events:
        sdk.handle_event(event)
    final = sdk._completed_response
    assert final is not None
    return final


async def test_a_text_stream_has_the_event_lifecycle():
    events, rest = await stream(encoder(), [chunk("Hel"), chunk("lo", tokens=2), chunk("", "stop", tokens=2)])
    assert [e.type for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.content_part.added", "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.completed",
    ]
    assert events[0].response.status == "in_progress" and events[0].response.output == []
    assert [e.delta for e in events if e.type == "response.output_text.delta"] == ["Hel", "lo"]
    done = events[-1].response
    assert done.output_text == "Hello" and done.usage.output_tokens == 2 and done.status == "completed"
    assert accumulated(events).output_text == "Hello" and rest.closed


async def test_tool_calls_stream_as_function_call_items():
    events, _ = await stream(encoder(tools=[WEATHER]), [
        chunk("Let me check.", calls=[ToolCallDelta(index=0, id="call_a", name="weather", arguments='{"ci')]),
        chunk(calls=[
            ToolCallDelta(index=0, arguments='ty":"Oslo"}'), ToolCallDelta(index=1, id="call_b", name="weather"),
        ]),
        chunk(calls=[ToolCallDelta(index=1, arguments="{}")], reason="tool_calls"),
    ])
    added = [(e.item.type, e.item.id) for e in events if e.type == "response.output_item.added"]
    assert added == [("message", "msg_r1"), ("function_call", "fc_r1_0"), ("function_call", "fc_r1_1")]
    args = [(e.item_id, e.arguments) for e in events if e.type == "response.function_call_arguments.done"]
    assert args == [("fc_r1_0", OSLO), ("fc_r1_1", "{}")]
    final = accumulated(events)
    assert [item.type for item in final.output] == ["message", "function_call", "function_call"]
    call = final.output[1]
    assert call.type == "function_call" and (call.call_id, call.arguments) == ("call_a", OSLO)
    assert events[-1].type == "response.completed"


async def test_a_cut_stream_ends_incomplete():
    events, _ = await stream(encoder(max_output_tokens=1), [chunk("Hi", "length")])
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"


async def test_an_empty_answer_is_an_empty_message():
    events, _ = await stream(encoder(), [chunk("", "stop", tokens=0)])
    assert events[-1].response.output[0].type == "message" and events[-1].response.output_text == ""
    accumulated(events)


async def test_stream_logprobs_go_with_each_delta():
    piece = GenerationChunk(text="Hi", usage=usage(), logprobs=[TokenLogprob(token="Hi", logprob=-0.5)])
    events, _ = await stream(encoder(top_logprobs=0), [piece, chunk("", "stop")])
    delta = next(e for e in events if e.type == "response.output_text.delta")
    assert delta.logprobs[0].token == "Hi" and delta.logprobs[0].logprob == -0.5
    assert events[-1].response.output[0].content[0].logprobs[0].bytes == list(b"Hi")


async def test_a_failure_after_the_start_is_an_error_event_and_the_end():
    events, rest = await stream(encoder(), [chunk("Hel")], fail=ServiceUnavailable("the tier went away"))
    last = events[-1]
    assert isinstance(last, ResponseErrorEvent) and last.message == "the tier went away"
    assert last.code == "tier_unavailable" and rest.closed
    # The nested shape too, which makes the openai SDK raise APIError.
    assert last.model_extra and last.model_extra["error"]["message"] == "the tier went away"
    assert not any(e.type == "response.completed" for e in events)


async def test_a_crash_after_the_start_still_ends_cleanly():
    events, rest = await stream(encoder(), [chunk("Hel")], fail=RuntimeError("bug"))
    assert events[-1].type == "error" and "RuntimeError" in events[-1].message and rest.closed
