"""The pure parts of the vLLM tier's agentic requests (no vLLM engine): the plan, the
schemas that force calls, the messages the chat template gets, the logprobs mapping and
how a choice is read back, whole or streamed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

import jsonschema
import pytest

from engines.agentic_choices import AutoStream, NamedStream, RequiredStream, choice_stream, final_choice
from engines.agentic_logprobs import FLOOR, token_logprobs
from engines.agentic_messages import plain_messages, template_knows_tools, template_messages, tool_dicts
from engines.agentic_plan import plan
from engines.agentic_schema import (
    named_call_schema,
    parse_named_call,
    parse_required_calls,
    required_calls_schema,
)
from engines.errors import EngineRequestError
from engines.types import Agentic, ChatTurn, OutputFormat, ToolCall, ToolCallDelta, ToolFunction

WEATHER = ToolFunction(name="get_weather", description="Weather in a city", parameters={
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
})
TIME = ToolFunction(name="get_time", parameters={
    "type": "object", "properties": {"zone": {"$ref": "#/$defs/Zone"}}, "required": ["zone"],
    "$defs": {"Zone": {"type": "string", "enum": ["UTC", "CET"]}},
})
PING = ToolFunction(name="ping")  # no parameters


# ---- plan ---------------------------------------------------------------------------------


def planned(**agentic):
    return plan(Agentic(**agentic), chat=True, tier="small-model", tool_parser="hermes")


def test_plan_modes_follow_tool_choice():
    assert planned().mode == "text"
    assert planned(tools=[WEATHER]).mode == "auto"
    assert planned(tools=[WEATHER], tool_choice="auto").tools == [WEATHER]
    assert planned(tools=[WEATHER], tool_choice="required").mode == "required"
    named = planned(tools=[WEATHER, TIME], tool_choice="get_time")
    assert (named.mode, named.tool_name) == ("named", "get_time")


def test_tool_choice_none_offers_no_tools_but_keeps_the_output_format():
    chosen = planned(tools=[WEATHER], tool_choice="none", output=OutputFormat(type="json_object"))
    assert (chosen.mode, chosen.tools, chosen.json_object) == ("json", [], True)


def test_json_schema_output_is_guided_by_that_schema():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    chosen = planned(output=OutputFormat(type="json_schema", json_schema=schema))
    assert (chosen.mode, chosen.schema, chosen.guided) == ("json", schema, True)


@pytest.mark.parametrize("agentic, param", [
    (dict(tools=[WEATHER], tool_choice="nope"), "tool_choice"),
    (dict(tool_choice="get_weather"), "tool_choice"),
    (dict(tools=[WEATHER], output=OutputFormat(type="json_object")), "response_format"),
    (dict(output=OutputFormat(type="json_schema")), "response_format"),
])
def test_what_the_tier_cannot_honour_is_refused_by_field(agentic, param):
    with pytest.raises(EngineRequestError) as refused:
        planned(**agentic)
    assert refused.value.data["param"] == param


def test_auto_without_a_tool_parser_and_tools_on_a_prompt_are_refused_naming_the_tier():
    with pytest.raises(EngineRequestError, match="small-model") as refused:
        plan(Agentic(tools=[WEATHER]), chat=True, tier="small-model", tool_parser=None)
    assert refused.value.data["param"] == "tool_choice"
    with pytest.raises(EngineRequestError, match="small-model"):
        plan(Agentic(tools=[WEATHER], tool_choice="required"), chat=False, tier="small-model",
             tool_parser="hermes")
    assert plan(Agentic(n=2, logprobs=1), chat=False, tier="t", tool_parser=None).mode == "text"


# ---- schemas ---------------------------------------------------------------------------


def test_required_schema_takes_each_tools_own_arguments():
    schema = required_calls_schema([WEATHER, TIME, PING], parallel=True)
    jsonschema.validate([
        {"name": "get_weather", "arguments": {"city": "Paris"}},
        {"name": "get_time", "arguments": {"zone": "UTC"}},
        {"name": "ping", "arguments": {}},
    ], schema)
    for wrong in ([], [{"name": "get_weather", "arguments": {"zone": "UTC"}}],
                  [{"name": "get_time", "arguments": {"zone": "Mars"}}],
                  [{"name": "other", "arguments": {}}]):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(wrong, schema)


def test_required_schema_without_parallel_calls_takes_one():
    schema = required_calls_schema([WEATHER], parallel=False)
    call = {"name": "get_weather", "arguments": {"city": "Oslo"}}
    jsonschema.validate([call], schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([call, call], schema)


def test_required_schema_hoists_defs_to_the_root_and_leaves_the_tool_alone():
    schema = required_calls_schema([TIME], parallel=True)
    assert schema["$defs"] == {"Zone": TIME.parameters["$defs"]["Zone"]}
    assert "$defs" in TIME.parameters


def test_conflicting_defs_are_refused():
    other = ToolFunction(name="other", parameters={"type": "object", "$defs": {"Zone": {"type": "integer"}}})
    with pytest.raises(EngineRequestError) as refused:
        required_calls_schema([TIME, other], parallel=True)
    assert refused.value.data["param"] == "tools"


def test_named_schema_is_the_tools_arguments():
    assert named_call_schema([WEATHER, TIME], "get_weather") == WEATHER.parameters
    assert named_call_schema([PING], "ping") == {"type": "object", "properties": {}}


def test_guided_calls_parse_into_tool_calls():
    calls = parse_required_calls('[{"name": "get_weather", "arguments": {"city": "Paris"}}]')
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("get_weather", {"city": "Paris"})]
    assert calls[0].id.startswith("call_")
    assert parse_required_calls('[{"name": "get_weather", "argu') is None
    named = parse_named_call('{ "city" : "Rome" }', "get_weather")
    assert (named.name, json.loads(named.arguments)) == ("get_weather", {"city": "Rome"})
    assert parse_named_call('{"city": "Ro', "get_weather").arguments == '{"city": "Ro'


# ---- messages ---------------------------------------------------------------------------

CALL = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')
HISTORY = [
    ChatTurn(role="system", content="Be brief."),
    ChatTurn(role="user", content="Weather in Paris?"),
    ChatTurn(role="assistant", content="", tool_calls=[CALL]),
    ChatTurn(role="tool", content='{"temp": 21}', tool_call_id="call_1"),
]


def test_template_messages_are_openai_style_with_arguments_as_mappings():
    messages = template_messages(HISTORY)
    assert messages[2] == {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}
    assert messages[3] == {"role": "tool", "content": '{"temp": 21}', "tool_call_id": "call_1",
                           "name": "get_weather"}
    assert tool_dicts([PING]) == [{"type": "function", "function": {"name": "ping", "parameters": {
        "type": "object", "properties": {}}}}]


def test_plain_messages_describe_the_tools_and_write_calls_and_results_as_text():
    second = ChatTurn(role="tool", content="second", tool_call_id="call_2")
    messages = plain_messages([*HISTORY, second], [WEATHER])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"].startswith("Be brief.\n\n# Tools")
    assert '"name": "get_weather"' in messages[0]["content"] and "<tool_call>" in messages[0]["content"]
    assert messages[2]["content"] == (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>')
    assert messages[3]["content"] == (
        '<tool_response>\n{"temp": 21}\n</tool_response>\n<tool_response>\nsecond\n</tool_response>')


def test_plain_messages_without_tools_offered_add_no_system_turn():
    assert plain_messages([ChatTurn(role="user", content="hi")], []) == [{"role": "user", "content": "hi"}]
    assert plain_messages([ChatTurn(role="user", content="hi")], [PING])[0]["role"] == "system"


def test_a_template_knows_tools_when_they_change_what_it_renders():
    assert template_knows_tools(lambda messages, tools: f"{messages}{tools or ''}")
    assert not template_knows_tools(lambda messages, tools: f"{messages}")

    def refuses(messages, tools):
        raise ValueError("no tools here")

    assert not template_knows_tools(refuses)


# ---- logprobs -------------------------------------------------------------------------


@dataclass
class Lp:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


def test_logprobs_map_the_sampled_token_and_the_top_k_by_rank():
    # Token 7 was sampled though ranked 3rd: vLLM sends it first, then the top 2.
    positions = [{7: Lp(-2.0, 3, "é"), 1: Lp(-0.1, 1, "a"), 2: Lp(-1.0, 2, None)}]
    [mapped] = token_logprobs([7], positions, 2, decode=lambda token_id: f"<{token_id}>")
    assert (mapped.token, mapped.logprob, mapped.bytes) == ("é", -2.0, [0xC3, 0xA9])
    assert [(t.token, t.logprob) for t in mapped.top] == [("a", -0.1), ("<2>", -1.0)]


def test_logprobs_with_k_zero_have_no_top_and_minus_infinity_is_floored():
    [mapped] = token_logprobs([5], [{5: Lp(float("-inf"), 9, "x")}], 0, decode=str)
    assert (mapped.logprob, mapped.top) == (FLOOR, [])
    [missing] = token_logprobs([5], [None], 1, decode=lambda token_id: "five")
    assert (missing.token, missing.top) == ("five", [])


# ---- choices ------------------------------------------------------------------------


class FakeReader:
    """A tool reader over `<tool_call>{json}</tool_call>` text, one complete call per feed."""

    def extract(self, text: str):
        if "<tool_call>" not in text:
            return text, []
        head, _, body = text.partition("<tool_call>")
        call = json.loads(body.removesuffix("</tool_call>"))
        return head, [ToolCall(id="x", name=call["name"], arguments=json.dumps(call["arguments"]))]

    def feed(self, previous: str, current: str, delta: str, previous_ids: Sequence[int],
             current_ids: Sequence[int], delta_ids: Sequence[int]):
        if delta.startswith("<tool_call>"):
            content, calls = self.extract(delta)
            return content, [ToolCallDelta(index=int(calls[0].name[-1]), id="parser-id", name=calls[0].name,
                                           arguments=calls[0].arguments) for _ in calls]
        return delta, []

    def remaining(self):
        return None


def test_final_choice_reads_calls_by_mode():
    required = planned(tools=[WEATHER], tool_choice="required")
    answer = final_choice(required, '[{"name": "get_weather", "arguments": {"city": "Oslo"}}]', "stop", None)
    assert (answer.text, answer.finish_reason, answer.tool_calls[0].name) == ("", "tool_calls", "get_weather")
    cut = final_choice(required, '[{"name": "get_w', "length", None)
    assert (cut.text, cut.finish_reason, cut.tool_calls) == ('[{"name": "get_w', "length", [])
    forced = planned(tools=[WEATHER], tool_choice="get_weather")
    named = final_choice(forced, '{"city": "Oslo"}', "stop", None)
    assert (named.finish_reason, named.tool_calls[0].arguments) == ("tool_calls", '{"city": "Oslo"}')
    text = final_choice(planned(), "hello", "length", None)
    assert (text.text, text.finish_reason) == ("hello", "length")


def test_auto_keeps_one_call_without_parallel_calls():
    reader = FakeReader()
    two = [ToolCall(id="a", name="f1", arguments="{}"), ToolCall(id="b", name="f2", arguments="{}")]
    reader.extract = lambda text: ("", two)
    single = final_choice(planned(tools=[WEATHER], parallel_tool_calls=False), "...", "stop", reader)
    assert [c.name for c in single.tool_calls] == ["f1"] and single.finish_reason == "tool_calls"
    both = final_choice(planned(tools=[WEATHER]), "...", "stop", reader)
    assert len(both.tool_calls) == 2


def test_named_stream_sends_the_name_first_then_argument_pieces():
    stream = NamedStream("get_weather")
    first = stream.feed('{"city"', [1], None)
    second = stream.feed(': "Oslo"}', [2], None)
    last = stream.feed("", [3], "stop")
    assert (first.tool_calls[0].name, first.tool_calls[0].arguments) == ("get_weather", '{"city"')
    assert first.tool_calls[0].id.startswith("call_") and second.tool_calls[0].id is None
    assert (last.tool_calls, last.finish_reason, first.text) == ([], "tool_calls", "")


def test_required_stream_sends_the_calls_whole_at_the_end():
    stream = RequiredStream()
    assert stream.feed('[{"name": "get_weather", ', [1], None).tool_calls == []
    end = stream.feed('"arguments": {"city": "Oslo"}}]', [2], "stop")
    assert [(c.index, c.name, c.arguments) for c in end.tool_calls] == [
        (0, "get_weather", '{"city": "Oslo"}')]
    assert end.finish_reason == "tool_calls"
    cut = RequiredStream()
    cut.feed('[{"na', [1], None)
    assert (cut.feed("", [], "length").text, cut.feed("", [], "length").finish_reason) == ('[{"na', "length")


def test_auto_stream_renames_ids_drops_extra_calls_without_parallel_and_sets_the_finish():
    stream = AutoStream(FakeReader(), parallel=False)
    assert stream.feed("Let me check. ", [1], None).text == "Let me check. "
    first = stream.feed('<tool_call>{"name": "f0", "arguments": {}}', [2], None)
    assert first.tool_calls[0].id.startswith("call_") and first.tool_calls[0].name == "f0"
    second = stream.feed('<tool_call>{"name": "f1", "arguments": {}}', [3], "stop")
    assert (second.tool_calls, second.finish_reason) == ([], "tool_calls")


def test_auto_stream_without_calls_sends_what_the_parser_held_back():
    class HoldsBack(FakeReader):
        def feed(self, *args):
            return "", []  # e.g. text that might still open a <tool_call>

    stream = AutoStream(HoldsBack(), parallel=True)
    stream.feed("<tool", [1], None)
    end = stream.feed(" is here", [2], "stop")
    assert (end.text, end.tool_calls, end.finish_reason) == ("<tool is here", [], "stop")


def test_text_plans_stream_text():
    piece = choice_stream(planned(), None).feed("hi", [1], "length")
    assert (piece.text, piece.finish_reason) == ("hi", "length")
