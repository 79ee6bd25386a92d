"""Token counts for an engine that does not tokenize itself (a remote tier).

With the upstream model's tokenizer configured the counts are exact; without one they
are estimated and say so (`Usage.estimated`).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from engines.openai_wire import chat_turn, tool_wire
from engines.types import ChatTurn, GenerationRequest

CHARS_PER_TOKEN = 4  # OpenAI's rule of thumb for English text


class TokenCounter(Protocol):
    @property
    def estimated(self) -> bool: ...

    def prompt(self, request: GenerationRequest) -> int:
        """Tokens the request's prompt (or chat turns, templated) takes."""
        ...

    def text(self, text: str) -> int: ...


class EstimatedCounter:
    estimated = True

    def prompt(self, request: GenerationRequest) -> int:
        if request.messages is None:
            return self.text(request.prompt or "")
        # A chat template adds a few tokens per turn around its text, and renders the tools.
        tools = [tool_wire(function) for function in request.agentic.tools]
        turns = sum(self.text(_turn_text(turn)) + 4 for turn in request.messages)
        return turns + (self.text(json.dumps(tools)) if tools else 0)

    def text(self, text: str) -> int:
        return -(-len(text) // CHARS_PER_TOKEN)


class TokenizerCounter:
    estimated = False

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer

    @classmethod
    def load(cls, name: str) -> "TokenizerCounter":
        from transformers import AutoTokenizer  # heavy: only for a tier that configures one

        return cls(AutoTokenizer.from_pretrained(name))

    def prompt(self, request: GenerationRequest) -> int:
        if request.messages is None:
            return len(self._tokenizer.encode(request.prompt or "", add_special_tokens=True))
        # Content as text, never null: many templates concatenate it.
        turns = [{**chat_turn(turn), "content": turn.content} for turn in request.messages]
        tools = [tool_wire(function) for function in request.agentic.tools] or None
        try:
            text = self._tokenizer.apply_chat_template(
                turns, tools=tools, tokenize=False, add_generation_prompt=True
            )
        except Exception:  # noqa: BLE001 - jinja raises anything; the upstream renders its own
            # A template that can't render this history (tool turns it doesn't know) must
            # not fail the request: the turns' own tokens, a few more each for the template.
            return sum(self.text(_turn_text(turn)) + 4 for turn in request.messages)
        return self.text(text)  # the template already holds any BOS token

    def text(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False))


def _turn_text(turn: ChatTurn) -> str:
    calls = "".join(call.name + call.arguments for call in turn.tool_calls or [])
    return turn.content + calls
