"""What a request asks of a model beyond its text, as router features.

An agent's request is harder than its words say: a tool schema to fill, a JSON schema to
honour, a long conversation to keep straight, a tool's result to read back. The router
sees these as features next to the text's own (`ASK_FEATURES`), so a router trained on
outcomes of such requests (the own-pair loop: `router collect` on exports that carry
tools, shadow pairs tagged `ask.*`) learns what they cost the small tier. Data without
them (the shipped MMLU prior) trains with zeros: a plain question.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from engines.types import Agentic, ChatTurn

ASK_FEATURES: tuple[str, ...] = ("ask_tools", "ask_forced_tool", "ask_schema", "ask_turns", "ask_after_tool")
TAG_PREFIX = "ask."  # journal tags of a served request: ask.tools=2, ...


class RequestAsks(BaseModel):
    model_config = ConfigDict(frozen=True)

    tools: int = Field(0, ge=0, description="Functions offered (0 when tool_choice is 'none')")
    forced_tool: bool = Field(False, description="tool_choice 'required' or a named function")
    schema_: bool = Field(False, alias="schema", description="A JSON object or JSON schema answer")
    turns: int = Field(1, ge=0, description="Messages in the conversation (1: a single prompt)")
    after_tool: bool = Field(False, description="The last message is a tool's result")

    def features(self) -> list[float]:
        return [
            float(self.tools), float(self.forced_tool), float(self.schema_), float(self.turns),
            float(self.after_tool),
        ]

    def tags(self) -> dict[str, str]:
        return {TAG_PREFIX + name.removeprefix("ask_"): _tag(v) for name, v in zip(ASK_FEATURES, self.features())}


PLAIN = RequestAsks()


def request_asks(agentic: Agentic, turns: Sequence[ChatTurn] | None) -> RequestAsks:
    offered = len(agentic.tools) if agentic.tool_choice != "none" else 0
    forced = bool(offered) and agentic.tool_choice not in (None, "auto")
    schema = agentic.output is not None and agentic.output.type != "text"
    history = list(turns or [])
    return RequestAsks(
        tools=offered, forced_tool=forced, schema=schema, turns=len(history) or 1,
        after_tool=bool(history) and history[-1].role == "tool",
    )


def asks_from_tags(tags: Mapping[str, str]) -> RequestAsks:
    """A journaled request's asks (a plain request when it carries no `ask.*` tag)."""
    values = {name: tags.get(TAG_PREFIX + name.removeprefix("ask_")) for name in ASK_FEATURES}
    if all(v is None for v in values.values()):
        return PLAIN
    number = {k: float(v or 0) for k, v in values.items()}
    return RequestAsks(
        tools=int(number["ask_tools"]), forced_tool=bool(number["ask_forced_tool"]),
        schema=bool(number["ask_schema"]), turns=int(number["ask_turns"] or 1),
        after_tool=bool(number["ask_after_tool"]),
    )


def _tag(value: float) -> str:
    return str(int(value))
