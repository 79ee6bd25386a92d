"""JSON schemas that force a tool call, and the calls read back from the guided text.

vLLM's structured outputs (xgrammar) constrain the answer to these schemas; the shapes
are the ones the tools' system description shows the model (`{"name", "arguments"}`),
so forcing a call asks for what the model was told to write anyway.

- `tool_choice="required"`: a JSON array of 1..N calls (N = 1 without parallel calls),
  each `{"name": <a tool's name>, "arguments": <that tool's arguments>}`; an `anyOf`
  over the tools keeps each name's arguments to its own schema.
- a named tool: that tool's arguments object alone (the name is already known).
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

from engines.errors import EngineRequestError
from engines.types import ToolCall, ToolFunction

# A tool without parameters still takes an object (OpenAI sends `{}`).
EMPTY_OBJECT: dict[str, Any] = {"type": "object", "properties": {}}


def call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def arguments_schema(tool: ToolFunction) -> dict[str, Any]:
    return copy.deepcopy(tool.parameters) if tool.parameters else dict(EMPTY_OBJECT)


def find_tool(tools: list[ToolFunction], name: str) -> ToolFunction:
    for tool in tools:
        if tool.name == name:
            return tool
    raise EngineRequestError(f"tool_choice names '{name}', which is not among the request's tools",
                             param="tool_choice")


def named_call_schema(tools: list[ToolFunction], name: str) -> dict[str, Any]:
    return arguments_schema(find_tool(tools, name))


def required_calls_schema(tools: list[ToolFunction], parallel: bool) -> dict[str, Any]:
    branches, defs = [], {}
    for tool in tools:
        arguments = arguments_schema(tool)
        _merge_defs(defs, arguments.pop("$defs", {}), tool.name)
        branches.append({
            "type": "object",
            "properties": {"name": {"type": "string", "enum": [tool.name]}, "arguments": arguments},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        })
    schema: dict[str, Any] = {"type": "array", "minItems": 1, "items": {"anyOf": branches}}
    if not parallel:
        schema["maxItems"] = 1
    if defs:
        # `#/$defs/...` references resolve against the document root, not the branch.
        schema["$defs"] = defs
    return schema


def _merge_defs(into: dict[str, Any], defs: Any, tool: str) -> None:
    if not isinstance(defs, dict):
        raise EngineRequestError(f"tool '{tool}': `$defs` must be an object", param="tools")
    for name, definition in defs.items():
        if name in into and into[name] != definition:
            raise EngineRequestError(
                f"tools define `$defs/{name}` differently ('{tool}' and another); give them distinct names",
                param="tools",
            )
        into[name] = definition


def parse_named_call(text: str, name: str) -> ToolCall:
    """The guided arguments object as a call; text that is not JSON (cut off by
    max_tokens) is kept as it is, so the caller sees what was generated."""
    try:
        arguments = json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        arguments = text
    return ToolCall(id=call_id(), name=name, arguments=arguments)


def parse_required_calls(text: str) -> list[ToolCall] | None:
    """The guided array as calls; None when the text is not a complete array of calls
    (cut off by max_tokens): the caller then returns it as text."""
    try:
        items = json.loads(text)
    except ValueError:
        return None
    if not isinstance(items, list) or not all(_is_call(item) for item in items):
        return None
    return [
        ToolCall(id=call_id(), name=item["name"], arguments=json.dumps(item["arguments"], ensure_ascii=False))
        for item in items
    ]


def _is_call(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("name"), str) and "arguments" in item
