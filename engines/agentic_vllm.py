"""The vLLM side of agentic requests: structured outputs for a plan, and vLLM's own
tool-call parsers (`ToolParserManager`, e.g. `hermes`) behind `agentic_choices.ToolReader`.

vLLM is imported inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from engines.agentic_plan import Plan
from engines.agentic_schema import call_id
from engines.errors import EngineRequestError
from engines.types import ToolCall, ToolCallDelta, ToolFunction

if TYPE_CHECKING:
    from vllm.sampling_params import StructuredOutputsParams
    from vllm.tool_parsers import ToolParser


def structured_outputs(plan: Plan) -> "StructuredOutputsParams | None":
    from vllm.sampling_params import StructuredOutputsParams

    if plan.json_object:
        return StructuredOutputsParams(json_object=True)
    if plan.schema is not None:
        return StructuredOutputsParams(json=plan.schema)
    return None


def tool_parser_class(name: str) -> "type[ToolParser]":
    """vLLM's parser registered as `name`; a KeyError names the ones there are."""
    from vllm.tool_parsers import ToolParserManager

    try:
        return ToolParserManager.get_tool_parser(name)
    except KeyError:
        known = sorted({*ToolParserManager.tool_parsers, *ToolParserManager.lazy_parsers})
        raise KeyError(f"unknown vLLM tool parser '{name}'; vLLM has: {', '.join(known)}") from None


class VllmToolReader:
    """One choice's vLLM tool parser, with the OpenAI request vLLM's parsers read the
    tools from (they are written against vLLM's own server)."""

    def __init__(self, parser_class: "type[ToolParser]", tokenizer: Any, tools: list[ToolFunction]) -> None:
        self._request = _chat_request(tools)
        self._parser = parser_class(tokenizer, self._request.tools)
        # e.g. hermes keeps special tokens in the text: some models' <tool_call> is one.
        self._request = self._parser.adjust_request(self._request)

    @property
    def skip_special_tokens(self) -> bool:
        return bool(self._request.skip_special_tokens)

    def extract(self, text: str) -> tuple[str, list[ToolCall]]:
        info = self._parser.extract_tool_calls(text, self._request)
        if not info.tools_called:
            return text, []
        calls = [ToolCall(id=call_id(), name=c.function.name, arguments=c.function.arguments)
                 for c in info.tool_calls]
        return info.content or "", calls

    def feed(self, previous: str, current: str, delta: str, previous_ids: Sequence[int],
             current_ids: Sequence[int], delta_ids: Sequence[int]) -> tuple[str, list[ToolCallDelta]]:
        message = self._parser.extract_tool_calls_streaming(
            previous, current, delta, previous_ids, current_ids, delta_ids, self._request
        )
        if message is None:
            return "", []
        return message.content or "", [_delta(call) for call in message.tool_calls]

    def remaining(self) -> ToolCallDelta | None:
        rest = self._parser.get_remaining_unstreamed_args()
        if not rest:
            return None
        return ToolCallDelta(index=len(self._parser.prev_tool_call_arr) - 1, arguments=rest)


def _delta(call: Any) -> ToolCallDelta:
    function = call.function
    return ToolCallDelta(
        index=call.index, id=call.id, name=function.name if function else None,
        arguments=(function.arguments or "") if function else "",
    )


def _chat_request(tools: list[ToolFunction]) -> Any:
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

    try:
        return ChatCompletionRequest.model_validate({
            "messages": [{"role": "user", "content": ""}],
            "tools": [{"type": "function", "function": tool.model_dump(exclude_none=True)} for tool in tools],
            "tool_choice": "auto",
        })
    except ValueError as exc:  # pydantic's ValidationError: a tool vLLM's protocol refuses
        raise EngineRequestError(f"tools: {exc}", param="tools") from exc
