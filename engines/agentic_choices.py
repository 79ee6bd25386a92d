"""One generated choice read back by its plan (engines.agentic_plan): as a whole
(`final_choice`) or piece by piece while it streams (`choice_stream`).

The `auto` mode reads calls with the tier's tool parser through `ToolReader`
(engines.agentic_vllm wraps vLLM's parsers in it), so this module needs no vLLM.
Streams of `required` calls are buffered and their calls sent whole at the end: the
array only parses once complete. Named calls and `auto` calls stream as they come.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

from engines.agentic_plan import Plan
from engines.agentic_schema import call_id, parse_named_call, parse_required_calls
from engines.types import FinishReason, ToolCall, ToolCallDelta


class ToolReader(Protocol):
    """A tool parser's state for one choice."""

    def extract(self, text: str) -> tuple[str, list[ToolCall]]:
        """The content before the calls, and the calls, of a whole answer."""
        ...

    def feed(self, previous: str, current: str, delta: str, previous_ids: Sequence[int],
             current_ids: Sequence[int], delta_ids: Sequence[int]) -> tuple[str, list[ToolCallDelta]]:
        """New content and call pieces once `delta` is appended to `previous`."""
        ...

    def remaining(self) -> ToolCallDelta | None:
        """Arguments of the last call parsed but not yet streamed, if any."""
        ...


@dataclass
class Answer:
    text: str
    finish_reason: FinishReason
    tool_calls: list[ToolCall] = field(default_factory=list)


def final_choice(plan: Plan, text: str, finish: FinishReason, reader: ToolReader | None) -> Answer:
    if plan.mode == "named":
        assert plan.tool_name is not None
        return Answer("", _called(finish), [parse_named_call(text, plan.tool_name)])
    if plan.mode == "required":
        calls = parse_required_calls(text)
        # Cut off before the array closed: the text goes back as it is, nothing is lost.
        return Answer(text, finish) if calls is None else Answer("", _called(finish), calls)
    if plan.mode == "auto" and reader is not None:
        content, calls = reader.extract(text)
        calls = calls if plan.parallel else calls[:1]
        return Answer(content, _called(finish) if calls else finish, calls)
    return Answer(text, finish)


def _called(finish: FinishReason) -> FinishReason:
    return "tool_calls" if finish == "stop" else finish


# ---- streams ---------------------------------------------------------------------------


@dataclass
class Piece:
    text: str = ""
    tool_calls: list[ToolCallDelta] = field(default_factory=list)
    finish_reason: FinishReason | None = None


class ChoiceStream(Protocol):
    def feed(self, delta: str, ids: Sequence[int], finish: FinishReason | None) -> Piece: ...


def choice_stream(plan: Plan, reader: ToolReader | None) -> ChoiceStream:
    if plan.mode == "named":
        assert plan.tool_name is not None
        return NamedStream(plan.tool_name)
    if plan.mode == "required":
        return RequiredStream()
    if plan.mode == "auto" and reader is not None:
        return AutoStream(reader, plan.parallel)
    return TextStream()


class TextStream:
    def feed(self, delta: str, ids: Sequence[int], finish: FinishReason | None) -> Piece:
        return Piece(delta, [], finish)


class NamedStream:
    """The guided text is the call's arguments: each delta is a piece of them."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._started = False

    def feed(self, delta: str, ids: Sequence[int], finish: FinishReason | None) -> Piece:
        calls = []
        if not self._started:
            calls.append(ToolCallDelta(index=0, id=call_id(), name=self._name, arguments=delta))
            self._started = True
        elif delta:
            calls.append(ToolCallDelta(index=0, arguments=delta))
        return Piece("", calls, _called(finish) if finish else None)


class RequiredStream:
    def __init__(self) -> None:
        self._text = ""

    def feed(self, delta: str, ids: Sequence[int], finish: FinishReason | None) -> Piece:
        self._text += delta
        if finish is None:
            return Piece()
        calls = parse_required_calls(self._text)
        if calls is None:
            return Piece(self._text, [], finish)
        return Piece("", _whole(calls), _called(finish))


class AutoStream:
    """vLLM's streaming extraction, call by call; at the end, what it held back (text
    that might have opened a call, arguments not yet streamed) is sent."""

    def __init__(self, reader: ToolReader, parallel: bool) -> None:
        self._reader = reader
        self._parallel = parallel
        self._text, self._ids = "", list[int]()
        self._sent = ""  # content sent so far
        self._calls = 0  # calls announced so far

    def feed(self, delta: str, ids: Sequence[int], finish: FinishReason | None) -> Piece:
        previous, previous_ids = self._text, list(self._ids)
        self._text += delta
        self._ids.extend(ids)
        fed = self._reader.feed(previous, self._text, delta, previous_ids, self._ids, ids)
        content, calls = self._keep(*fed)
        if finish is None:
            return Piece(content, calls)
        more_content, more_calls = self._keep(*self._flush())
        reason = _called(finish) if self._calls else finish
        return Piece(content + more_content, calls + more_calls, reason)

    def _keep(self, content: str, calls: list[ToolCallDelta]) -> tuple[str, list[ToolCallDelta]]:
        # Without parallel calls only the first is kept: the client said it takes one.
        calls = [self._own_id(call) for call in calls if self._parallel or call.index == 0]
        self._sent += content
        self._calls = max([self._calls, *(call.index + 1 for call in calls)])
        return content, calls

    def _flush(self) -> tuple[str, list[ToolCallDelta]]:
        if self._calls:
            rest = self._reader.remaining()
            return "", [rest] if rest is not None and rest.index < self._calls else []
        # No call streamed: the whole answer read at once says what was held back.
        content, calls = self._reader.extract(self._text)
        tail = content[len(self._sent):] if content.startswith(self._sent) else ""
        return tail, _whole(calls)

    @staticmethod
    def _own_id(call: ToolCallDelta) -> ToolCallDelta:
        # The parsers' ids have their own format; every call this gateway makes reads call_...
        return call.model_copy(update={"id": call_id()}) if call.id is not None else call


def _whole(calls: list[ToolCall]) -> list[ToolCallDelta]:
    """Calls sent in one piece each."""
    return [ToolCallDelta(index=i, id=c.id, name=c.name, arguments=c.arguments) for i, c in enumerate(calls)]
