"""Token counts for an engine that does not tokenize itself (a remote tier).

With the upstream model's tokenizer configured the counts are exact; without one they
are estimated and say so (`Usage.estimated`).
"""

from __future__ import annotations

from typing import Any, Protocol

from engines.types import GenerationRequest

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
        # A chat template adds a few tokens per turn around its text.
        return sum(self.text(turn.content) + 4 for turn in request.messages)

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
        turns = [turn.model_dump() for turn in request.messages]
        text = self._tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        return self.text(text)  # the template already holds any BOS token

    def text(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False))
