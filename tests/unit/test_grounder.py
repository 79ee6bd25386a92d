"""The grounder at its own seam (no HTTP edge): when it applies, the grounded request of
each attempt, the async upgrade of an answer and of a stream, and its metrics' category
label, all read from one `GroundingAsk`."""

from __future__ import annotations

from typing import AsyncIterator

from prometheus_client import CollectorRegistry

from engines.streams import first_chunk
from engines.types import ChatTurn, GenerationChunk, GenerationRequest, SamplingSpec
from retrieval.config import GroundingConfig
from retrieval.grounding import Grounder, GroundingAsk, retrieval_query
from retrieval.metrics import GroundingMetrics
from tests.support.fake_engine import FakeEngine
from tests.support.retrieval import ScriptedReranker, first_stage

QUESTION = "how can I get a refund for my purchase"
TITLES = {"refund_policy": "Refund policy", "track_refund": "Track a refund", "cancel_order": "Cancel an order"}


def rig(tmp_path, reranker: ScriptedReranker, **config) -> tuple[Grounder, CollectorRegistry, str]:
    """The grounder, its metrics' registry, and a document other than the first stage's top."""
    registry = CollectorRegistry()
    stage = first_stage(tmp_path)
    grounder = Grounder(stage, reranker, GroundingMetrics(registry), GroundingConfig(**{"top_k": 1, **config}))
    top = stage.hybrid(QUESTION, 20).hits[0].chunk.id
    return grounder, registry, next(d for d in TITLES if not top.startswith(d))


def prefer(doc_id: str):
    return lambda passage: 1.0 if passage.startswith(TITLES[doc_id]) else 0.0


def ask(domain: str | None = None, requested: bool | None = True) -> GroundingAsk:
    return GroundingAsk(request_id="r1", query=QUESTION, domain=domain, requested=requested)


def generation(max_tokens: int) -> GenerationRequest:
    return GenerationRequest(
        request_id="r1", messages=[ChatTurn(role="user", content=QUESTION)], sampling=SamplingSpec(max_tokens=max_tokens)
    )


def sample(registry: CollectorRegistry, name: str, labels: dict[str, str]) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def dispatcher_like(engine: FakeEngine):
    """Opens as the dispatcher does: the engine's first chunk read, then an async generator
    (not yet started) that yields it and the rest."""

    async def opener(request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        raw = engine.stream(request)
        first = await first_chunk(raw)

        async def rest() -> AsyncIterator[GenerationChunk]:
            try:
                yield first
                async for chunk in raw:
                    yield chunk
            finally:
                await raw.aclose()  # type: ignore[attr-defined]

        return rest()

    return opener


def test_applies_by_the_clients_switch_else_by_the_one_normalised_domain(tmp_path):
    grounder, _, _ = rig(tmp_path, ScriptedReranker(lambda p: 0.0), domains=["refund"])
    assert grounder.applies(ask("refund", requested=None))
    assert not grounder.applies(ask("shipping", requested=None))
    assert not grounder.applies(ask(None, requested=None))
    assert grounder.applies(ask(None, requested=True))
    assert not grounder.applies(ask("refund", requested=False))


def test_the_retrieval_query_is_the_last_non_empty_user_turn():
    turns = [ChatTurn(role="user", content="first"), ChatTurn(role="assistant", content="a"),
             ChatTurn(role="user", content="second"), ChatTurn(role="user", content="  ")]
    assert retrieval_query(turns, "fallback") == "second"
    assert retrieval_query(None, "fallback") == "fallback"


async def test_an_upgrade_cancels_the_first_answer_and_generates_with_the_reranked_context(tmp_path):
    reranker = ScriptedReranker(lambda p: 0.0, delay_s=0.05)
    grounder, registry, winner = rig(tmp_path, reranker, domains=["refund"])
    reranker.score = prefer(winner)
    engine = FakeEngine("tiny", max_model_len=4096, token_delay_s=0.05)
    result, context = await grounder.run(ask("refund"), engine.generate, generation(30))
    first, second = engine.seen
    assert context.source == "reranked" and context.ids()[0].startswith(winner)
    assert first.request_id in engine.aborted and second.request_id == "r1-reranked"
    assert f"[{winner}#0]" in result.text
    assert sample(registry, "gateway_grounded_requests_total", {"context": "reranked", "category": "refund"}) == 1
    assert sample(registry, "gateway_rerank_outcomes_total", {"outcome": "upgraded"}) == 1


async def test_a_stream_that_lost_to_the_reranker_is_closed_though_nobody_read_it(tmp_path):
    reranker = ScriptedReranker(lambda p: 0.0, delay_s=0.2)
    grounder, registry, winner = rig(tmp_path, reranker, stream_deadline_s=2.0)
    reranker.score = prefer(winner)
    engine = FakeEngine("tiny", max_model_len=4096, token_delay_s=0.0)
    stream, context = await grounder.open_stream(ask("billing"), dispatcher_like(engine), generation(30))
    first, second = engine.seen
    assert context.source == "reranked" and second.request_id == "r1-reranked"
    assert first.request_id in engine.aborted and engine.running == {second.request_id}
    text = "".join([chunk.text async for chunk in stream])
    assert f"[{winner}#0]" in text
    assert sample(registry, "gateway_grounded_requests_total", {"context": "reranked", "category": "other"}) == 1
