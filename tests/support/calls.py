"""A dispatch `Call` for a chat request, as the pipeline's route stage would make it: for
tests that drive the dispatch (streams, cancellation) or the router directly."""

from __future__ import annotations

from engines.types import GenerationRequest
from gateway.dispatch import Call
from wire.chat import ChatCompletionRequest
from router.decision import RoutingQuery


async def plan_call(gateway, request: ChatCompletionRequest, request_id: str) -> Call:
    pinned = request.model if request.model in ("small", "large") else None
    query = RoutingQuery(text="\n".join(m.text() for m in request.messages if m.role == "user"))
    decision = await gateway.router.decide(pinned, query, request_id)
    generation = GenerationRequest(
        request_id=request_id, messages=request.turns(), sampling=request.sampling(request.requested_max_tokens())
    )
    return Call("chat", decision, generation)
