"""What a vLLM tier does with a request's `agentic` part, decided before any work.

    text      free generation, no tools offered (none asked, or tool_choice `none`)
    json      the answer is constrained to JSON: any object, or the request's schema
    named     the answer is the arguments object of the one tool named by tool_choice
    required  the answer is a JSON array of calls (agentic_schema.required_calls_schema)
    auto      free generation with the tools offered; the tier's tool parser reads calls
              out of the text

What this tier cannot honour is refused here, naming the field and the tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from engines.agentic_schema import named_call_schema, required_calls_schema
from engines.errors import EngineRequestError
from engines.types import Agentic, ToolFunction

Mode = Literal["text", "json", "named", "required", "auto"]


@dataclass(frozen=True)
class Plan:
    mode: Mode
    tools: list[ToolFunction]  # offered to the model in the prompt
    schema: dict[str, Any] | None = None  # the JSON schema the answer must follow
    json_object: bool = False  # any JSON object (response_format json_object)
    tool_name: str | None = None  # mode `named`
    parallel: bool = True

    @property
    def guided(self) -> bool:
        return self.schema is not None or self.json_object


def plan(agentic: Agentic, chat: bool, tier: str, tool_parser: str | None) -> Plan:
    """`chat`: the request has messages (a prompt has no tools); `tool_parser`: the
    tier's parser for `auto`, None when it has none."""
    choice = _tool_choice(agentic)
    if choice != "none" and not chat:
        raise EngineRequestError(f"tools need chat messages; tier '{tier}' got a prompt", param="tools")
    if choice == "none":
        return _output_plan(agentic)
    if choice == "required":
        schema = required_calls_schema(agentic.tools, agentic.parallel_tool_calls)
        return Plan("required", agentic.tools, schema=schema, parallel=agentic.parallel_tool_calls)
    if choice != "auto":
        return Plan("named", agentic.tools, schema=named_call_schema(agentic.tools, choice), tool_name=choice)
    return _auto_plan(agentic, tier, tool_parser)


def _tool_choice(agentic: Agentic) -> str:
    if not agentic.tools:
        if agentic.tool_choice not in (None, "none", "auto"):
            raise EngineRequestError(f"tool_choice '{agentic.tool_choice}' needs tools", param="tool_choice")
        return "none"
    return agentic.tool_choice or "auto"


def _output_plan(agentic: Agentic) -> Plan:
    output = agentic.output
    if output is None or output.type == "text":
        return Plan("text", [])
    if output.type == "json_object":
        return Plan("json", [], json_object=True)
    if not output.json_schema:
        raise EngineRequestError("response_format json_schema needs a schema", param="response_format")
    return Plan("json", [], schema=output.json_schema)


def _auto_plan(agentic: Agentic, tier: str, tool_parser: str | None) -> Plan:
    if tool_parser is None:
        raise EngineRequestError(
            f"tier '{tier}' has no tool parser: tool_choice 'auto' can't be served (use 'required', "
            "a named tool or 'none')", param="tool_choice",
        )
    if agentic.output is not None and agentic.output.type != "text":
        # The grammar would hold the whole answer, leaving the model no way to call a tool.
        raise EngineRequestError(
            f"tier '{tier}' can't combine response_format {agentic.output.type} with tool_choice 'auto'; "
            "use tool_choice 'none', 'required' or a named tool", param="response_format",
        )
    return Plan("auto", agentic.tools, parallel=agentic.parallel_tool_calls)
