"""Chat turns as the Hugging Face chat templates take them, tools included.

Two shapes, chosen once per engine by `template_knows_tools`:
- `template_messages`: OpenAI-style dicts (assistant `tool_calls`, `tool` turns) for a
  template that renders tools itself; the tools go to it as `tools=tool_dicts(...)`.
- `plain_messages`: for a template that ignores tools (the embedded SmolLM2 and Gemma
  ones do), everything becomes text it does render: the tools are described in the
  system turn, earlier calls are written into the assistant's text and tool results
  become user turns, all in the Hermes format (`<tool_call>`, `<tool_response>`) that
  the `hermes` tool parser reads back.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from engines.types import ChatTurn, ToolCall, ToolFunction

Message = dict[str, Any]
# Renders messages (with tools, or None) to the prompt text: the tokenizer's chat template.
Render = Callable[[list[Message], list[Message] | None], str]

_PROBE_TURNS: list[Message] = [{"role": "user", "content": "What is the weather?"}]
_PROBE_TOOLS: list[Message] = [{
    "type": "function",
    "function": {"name": "probe_weather_tool", "description": "Probe.",
                 "parameters": {"type": "object", "properties": {}}},
}]


def template_knows_tools(render: Render) -> bool:
    """Whether the template renders `tools`: the same turns rendered with and without
    a tool differ. A template that fails on `tools` does not know them."""
    try:
        return render(_PROBE_TURNS, _PROBE_TOOLS) != render(_PROBE_TURNS, None)
    except Exception:
        return False


def tool_dicts(tools: list[ToolFunction]) -> list[Message]:
    return [{"type": "function", "function": _function(tool)} for tool in tools]


def _function(tool: ToolFunction) -> Message:
    function: Message = {"name": tool.name}
    if tool.description is not None:
        function["description"] = tool.description
    function["parameters"] = tool.parameters or {"type": "object", "properties": {}}
    return function


# ---- templates that render tools ---------------------------------------------------


def template_messages(turns: list[ChatTurn]) -> list[Message]:
    names = {call.id: call.name for turn in turns for call in turn.tool_calls or []}
    return [_template_message(turn, names) for turn in turns]


def _template_message(turn: ChatTurn, names: dict[str, str]) -> Message:
    message: Message = {"role": turn.role, "content": turn.content}
    if turn.tool_calls:
        message["tool_calls"] = [_template_call(call) for call in turn.tool_calls]
    if turn.role == "tool":
        message["tool_call_id"] = turn.tool_call_id
        # Some templates print the function's name beside its result.
        if turn.tool_call_id in names:
            message["name"] = names[turn.tool_call_id]
    return message


def _template_call(call: ToolCall) -> Message:
    # Transformers' templates take arguments as a mapping (vLLM converts them the same way).
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": _arguments(call)}}


def _arguments(call: ToolCall) -> Any:
    try:
        return json.loads(call.arguments)
    except ValueError:
        return call.arguments


# ---- templates that ignore tools ----------------------------------------------------


def tools_system_text(tools: list[ToolFunction]) -> str:
    """The tools as Qwen2.5's template describes them (Hermes format)."""
    listed = "\n".join(json.dumps(tool, ensure_ascii=False) for tool in tool_dicts(tools))
    return (
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n"
        f"<tools>\n{listed}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        "<tool_call></tool_call> XML tags:\n<tool_call>\n"
        '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
    )


def plain_messages(turns: list[ChatTurn], tools: list[ToolFunction]) -> list[Message]:
    """`tools`: those offered to the model now (none when tool_choice is `none`)."""
    messages: list[Message] = []
    for turn in turns:
        if turn.role == "tool":
            _add_tool_result(messages, turn.content)
        else:
            messages.append({"role": turn.role, "content": _plain_content(turn)})
    if tools:
        _describe_tools(messages, tools_system_text(tools))
    return messages


def _plain_content(turn: ChatTurn) -> str:
    calls = [_call_text(call) for call in turn.tool_calls or []]
    return "\n".join(part for part in (turn.content, *calls) if part)


def _call_text(call: ToolCall) -> str:
    body = json.dumps({"name": call.name, "arguments": _arguments(call)}, ensure_ascii=False)
    return f"<tool_call>\n{body}\n</tool_call>"


def _add_tool_result(messages: list[Message], content: str) -> None:
    # Results of one round of calls share one user turn, as in Qwen2.5's template:
    # templates that want user and assistant turns to alternate still render it.
    result = f"<tool_response>\n{content}\n</tool_response>"
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "user" and last["content"].endswith("</tool_response>"):
        last["content"] += "\n" + result
    else:
        messages.append({"role": "user", "content": result})


def _describe_tools(messages: list[Message], description: str) -> None:
    if messages and messages[0]["role"] == "system":
        messages[0]["content"] = f"{messages[0]['content']}\n\n{description}".lstrip()
    else:
        messages.insert(0, {"role": "system", "content": description})
