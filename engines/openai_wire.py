"""Engine types in the OpenAI wire format, both ways, for a remote tier.

Out: what an agent asks goes upstream unchanged (tools, tool_choice, parallel_tool_calls,
response_format, n, logprobs; assistant turns with tool calls, tool turns). Back: every
choice the upstream answers (text, tool calls, logprobs), whole or as stream deltas.
vLLM and OpenAI send the same shapes; the completions endpoint keeps its own, older
logprobs format (parallel lists), read by `_completion_logprobs`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from engines.errors import EngineRequestError
from engines.types import (
    Agentic,
    ChatTurn,
    FinishReason,
    GeneratedChoice,
    OutputFormat,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    ToolFunction,
    TopLogprob,
)

# ---- out: request fields ---------------------------------------------------------------


def chat_turn(turn: ChatTurn) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": turn.role, "content": turn.content}
    if turn.tool_calls:
        wire["tool_calls"] = [_tool_call(call) for call in turn.tool_calls]
        # A turn that only called tools has no content: OpenAI's own form of it is null.
        wire["content"] = turn.content or None
    if turn.tool_call_id is not None:
        wire["tool_call_id"] = turn.tool_call_id
    return wire


def agentic_fields(agentic: Agentic, chat: bool) -> dict[str, Any]:
    """The body fields of what an agent asks, only those it set."""
    body: dict[str, Any] = {}
    if agentic.tools or agentic.tool_choice is not None:
        if not chat:
            # No completions API takes tools: sending them would have them ignored.
            param = "tools" if agentic.tools else "tool_choice"
            raise EngineRequestError("tools are served on chat completions only", param=param)
        body.update(_tool_fields(agentic))
    if agentic.output is not None:
        body["response_format"] = _response_format(agentic.output)
    if agentic.n != 1:
        body["n"] = agentic.n
    if agentic.logprobs is not None:
        # Chat asks for the chosen tokens and k alternatives apart; completions in one number.
        k = agentic.logprobs
        body.update({"logprobs": True, "top_logprobs": k} if chat else {"logprobs": k})
    return body


def tool_wire(function: ToolFunction) -> dict[str, Any]:
    return {"type": "function", "function": function.model_dump(exclude_none=True)}


def _tool_fields(agentic: Agentic) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if agentic.tools:
        body["tools"] = [tool_wire(function) for function in agentic.tools]
        body["parallel_tool_calls"] = agentic.parallel_tool_calls
    if agentic.tool_choice is not None:
        body["tool_choice"] = _tool_choice(agentic.tool_choice)
    return body


def _tool_choice(choice: str) -> str | dict[str, Any]:
    if choice in ("none", "auto", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def _response_format(output: OutputFormat) -> dict[str, Any]:
    if output.type != "json_schema":
        return {"type": output.type}
    schema = {"name": output.name, "schema": output.json_schema, "strict": output.strict}
    present = {key: value for key, value in schema.items() if value is not None}
    return {"type": "json_schema", "json_schema": present}


def _tool_call(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


# ---- back: choices and stream deltas ---------------------------------------------------------


def choice_of(raw: dict[str, Any], position: int) -> GeneratedChoice:
    """One choice of a whole answer (chat `message` or completions `text`)."""
    message = raw.get("message") or {}
    return GeneratedChoice(
        index=_index(raw, position),
        text=message.get("content") or raw.get("text") or "",
        finish_reason=finish(raw.get("finish_reason")),
        tool_calls=[_called(call, i) for i, call in enumerate(message.get("tool_calls") or [])],
        logprobs=logprobs(raw.get("logprobs")),
    )


def delta_text(raw: dict[str, Any]) -> str:
    delta = raw.get("delta")
    if isinstance(delta, dict):
        return delta.get("content") or ""
    return raw.get("text") or ""


def delta_tool_calls(raw: dict[str, Any]) -> list[ToolCallDelta]:
    delta = raw.get("delta")
    calls = delta.get("tool_calls") if isinstance(delta, dict) else None
    return [_call_delta(call, i) for i, call in enumerate(calls or [])]


def chunk_index(raw: dict[str, Any]) -> int:
    return _index(raw, 0)


def logprobs(raw: Any) -> list[TokenLogprob] | None:
    """A choice's logprobs in either format: chat (`content`) or completions (`tokens`)."""
    if not isinstance(raw, dict):
        return None
    if "tokens" in raw:
        return _completion_logprobs(raw)
    content = raw.get("content")
    return [_token_logprob(entry) for entry in content] if isinstance(content, list) else None


def finish(reason: Any) -> FinishReason:
    if reason in ("stop", "length", "abort", "tool_calls"):
        return reason
    if reason == "function_call":  # the legacy name of a tool call
        return "tool_calls"
    return "stop"  # content_filter, ...: the answer ended


def _index(raw: dict[str, Any], position: int) -> int:
    index = raw.get("index")
    return index if isinstance(index, int) else position


def _called(raw: dict[str, Any], position: int) -> ToolCall:
    function = raw.get("function") or {}
    return ToolCall(
        # An upstream that sends no id still gets one: the client answers the call by it.
        id=raw.get("id") or f"call_{uuid.uuid4().hex[:24]}",
        name=function.get("name") or "",
        arguments=_arguments(function.get("arguments")),
    )


def _call_delta(raw: dict[str, Any], position: int) -> ToolCallDelta:
    function = raw.get("function") or {}
    return ToolCallDelta(
        index=_index(raw, position),
        id=raw.get("id"),
        name=function.get("name"),
        arguments=_arguments(function.get("arguments")),
    )


def _arguments(value: Any) -> str:
    # Some servers send the arguments as an object; OpenAI's wire has them as JSON text.
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _token_logprob(entry: dict[str, Any]) -> TokenLogprob:
    return TokenLogprob(
        token=entry.get("token", ""),
        logprob=_logprob(entry.get("logprob")),
        bytes=entry.get("bytes"),
        top=[_top(top) for top in entry.get("top_logprobs") or []],
    )


def _top(entry: dict[str, Any]) -> TopLogprob:
    return TopLogprob(
        token=entry.get("token", ""), logprob=_logprob(entry.get("logprob")), bytes=entry.get("bytes")
    )


def _completion_logprobs(raw: dict[str, Any]) -> list[TokenLogprob]:
    tokens = raw.get("tokens") or []
    chosen = _padded(raw.get("token_logprobs"), len(tokens))
    tops = _padded(raw.get("top_logprobs"), len(tokens))
    return [
        TokenLogprob(token=token, logprob=_logprob(value), top=_named_tops(top))
        for token, value, top in zip(tokens, chosen, tops)
    ]


def _named_tops(raw: Any) -> list[TopLogprob]:
    """Completions' `{token: logprob}` of one position, in the upstream's order (by rank)."""
    return [TopLogprob(token=token, logprob=_logprob(value)) for token, value in (raw or {}).items()]


def _padded(values: Any, length: int) -> list[Any]:
    values = list(values or [])
    return values + [None] * (length - len(values))


def _logprob(value: Any) -> float:
    # None is "no probability" (an echoed first prompt token); -inf says so and JSON-encodes as null again.
    return float(value) if value is not None else float("-inf")
