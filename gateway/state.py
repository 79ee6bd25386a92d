"""A request's state: the one object the pipeline's stages fill in, in order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator, Literal, Protocol

from adapters.directory import LiveAdapter
from cascade.trace import CascadeTrace
from engines.types import GenerationChunk, GenerationRequest, GenerationResult
from gateway.catalog import ModelTarget
from gateway.keys import KeyRecord
from wire.chat import ChatCompletionRequest, CompletionRequest
from retrieval.grounding import Context
from router.decision import RoutingDecision, RoutingQuery, TierConstraint

Body = ChatCompletionRequest | CompletionRequest
Endpoint = Literal["chat", "completions"]


class Encoder(Protocol):
    """Another API's rendering of a chat answer (the Responses API's, say)."""

    def body(self, state: "RequestState", result: GenerationResult) -> dict[str, Any]: ...

    def events(
        self, state: "RequestState", first: GenerationChunk, rest: AsyncIterator[GenerationChunk]
    ) -> AsyncIterator[bytes]: ...


@dataclass
class RequestState:
    """Set by parse: what the client asked. Filled in by the later stages; after dispatch
    `decision` and `generation` are what served (a fallback or grounding changes them)."""

    request_id: str
    endpoint: Endpoint
    body: Body
    key: KeyRecord | None
    target: ModelTarget  # the resolved `model` field
    query: RoutingQuery  # the user's words and the ONE normalised category
    generation: GenerationRequest
    started: float  # when the pipeline began (answer latency for the sinks)
    pinned_adapter: LiveAdapter | None = None  # validate: `small:<domain>[@version]`
    decision: RoutingDecision | None = None  # route, then dispatch
    adapter: LiveAdapter | None = None  # adapter
    mode: str | None = None  # support: the category's rollout mode
    rollout_category: str | None = None  # support: the category the rollout keyed it by
    context: Context | None = None  # ground: None = not grounded
    model_name: str = ""  # the served model's name, for the response
    encoder: Encoder | None = None  # parse: /v1/responses answers in its own shapes
    context_tokens: int = 0  # validate: the prompt (estimated) plus the answer's max_tokens
    constraint: TierConstraint | None = None  # budget: what `auto` may choose (a soft budget spent)
    spent_tiers: frozenset[str] = frozenset()  # budget: tiers `auto` may not choose (their budget spent)
    cascade: CascadeTrace | None = None  # route: a cascaded request; dispatch: the tiers that answered

    @property
    def include_usage(self) -> bool:
        return self.body.include_usage()

    @property
    def domain(self) -> str | None:
        """The adapter domain that serves the request, if one does."""
        return self.adapter.domain if self.adapter is not None else None

    @property
    def category(self) -> str | None:
        """The request's category: the client's, else the adapter domain's (normalised both)."""
        return self.query.category or self.domain

    @property
    def response_id(self) -> str:
        return ("chatcmpl-" if self.endpoint == "chat" else "cmpl-") + self.request_id
