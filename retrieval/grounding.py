"""Grounded answers: first-stage context at once, the cross-encoder's upgrade if in time.

The design note's async rerank: generation starts with the hybrid (BM25 + dense) top-k
while the cross-encoder reranks the candidates. If the reranker's top-1 differs (is not
in the first-stage context) and arrives before the answer is final, a non-streamed request restarts generation with the
reranked context (the first attempt is cancelled, which aborts it in vLLM); a stream
holds its first token until the reranker answers or the deadline passes, and never
retracts a sent token. `sync` (rerank, then generate) and `off` exist for comparison.

The grounder knows nothing of the edge: it is asked with a `GroundingAsk`, builds the
grounded `GenerationRequest` of each attempt itself, and generates (or opens a stream)
through the callable it is handed, which dispatches (retries, breaker, fallback) and
returns whatever the caller needs back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from functools import partial
from typing import AsyncIterator, Awaitable, Callable, Literal, Sequence, TypeVar

from engines.streams import first_chunk
from engines.types import ChatTurn, GenerationRequest
from retrieval.config import GroundingConfig
from retrieval.first_stage import FirstStage, Hit, Retrieval
from retrieval.knowledge import reorder
from retrieval.metrics import GroundingMetrics
from retrieval.reranker import Reranker
from retrieval.usage import Outcome, QueryUsage, ServedChunk
from retrieval.usage_journal import UsageJournal

logger = logging.getLogger(__name__)

Source = Literal["first-stage", "reranked", "none"]
T = TypeVar("T")  # what the caller's generation returns
C = TypeVar("C")  # the items of the caller's stream

# Fixed text, then the chunks in rank order: prompts that share a top chunk share a
# prefix, which vLLM's prefix cache prefills once (on CPU a 750-token prompt costs
# 6.3 s cold vs 2.9 s with its prefix cached; a per-query word here would defeat it).
INSTRUCTION = (
    "Answer the customer's question using the knowledge base excerpts below. "
    "Cite the ids of the excerpts you rely on in square brackets, as written before each excerpt."
)


@dataclass(frozen=True)
class Context:
    """The chunks a generation was given, and which stage ranked them."""

    source: Source
    hits: list[Hit] = field(default_factory=list)

    def ids(self) -> list[str]:
        return [h.chunk.id for h in self.hits]

    def headers(self) -> dict[str, str]:
        headers = {"x-gateway-context": self.source}
        if self.hits:
            headers["x-gateway-context-chunks"] = ",".join(self.ids())
        return headers

    def prompt(self) -> str:
        parts = [INSTRUCTION]
        for hit in self.hits:
            chunk = hit.chunk
            heading = f"{chunk.title} — {chunk.section}" if chunk.section else chunk.title
            parts.append(f"[{chunk.id}] {heading}\n{chunk.text}")
        return "\n\n".join(parts)


NO_CONTEXT = Context("none")


@dataclass(frozen=True)
class GroundingAsk:
    """What the grounder needs of a request."""

    request_id: str  # the usage journal's key
    query: str  # what to retrieve for (`retrieval_query`)
    domain: str | None  # the normalised category: the client's, else the adapter domain
    requested: bool | None  # the client's `grounding` switch; None = by domain


@dataclass(frozen=True)
class Asker:
    """Who a grounded query is for: the usage journal's key and the metrics' category label."""

    request_id: str
    category: str  # bounded label ("" = none)


def with_context(generation: GenerationRequest, context: Context, attempt: str = "") -> GenerationRequest:
    """The generation with the context in front: a system message (merged into the client's
    own system message when there is one) for chat, a preamble for text completions."""
    if not context.hits:
        return generation
    request_id = generation.request_id + attempt  # vLLM ids must be unique per attempt
    if generation.messages is not None:
        turns = list(generation.messages)
        if turns and turns[0].role == "system":
            turns[0] = ChatTurn(role="system", content=f"{turns[0].content}\n\n{context.prompt()}")
        else:
            turns.insert(0, ChatTurn(role="system", content=context.prompt()))
        update: dict[str, object] = {"messages": turns, "request_id": request_id}
    else:
        update = {"prompt": f"{context.prompt()}\n\n{generation.prompt}", "request_id": request_id}
    return generation.model_copy(update=update)


def retrieval_query(messages: Sequence[ChatTurn] | None, fallback: str) -> str:
    """The last non-empty user turn: in a conversation it is what needs answering now;
    `fallback` (the user's text) for a text completion."""
    if messages:
        for turn in reversed(messages):
            if turn.role == "user" and turn.content.strip():
                return turn.content
    return fallback


class Grounder:
    def __init__(
        self, first_stage: FirstStage, reranker: Reranker, metrics: GroundingMetrics,
        config: GroundingConfig | None = None, clock: Callable[[], float] = time.perf_counter,
        usage: UsageJournal | None = None,
    ) -> None:
        self._first_stage = first_stage
        self._reranker = reranker
        self._metrics = metrics
        self._config = config or GroundingConfig()
        self._clock = clock
        self._usage = usage
        self._label: Callable[[str | None], str] = self._grounding_domain

    def configure(self, config: GroundingConfig) -> None:
        self._config = config

    def label_categories(self, label: Callable[[str | None], str]) -> None:
        """The bounded category labels of the app (gateway.labels.CategoryLabels.label)."""
        self._label = label

    def background(self) -> list[UsageJournal]:
        """What must run for the app's lifetime: the usage journal's writer and pruner."""
        return [self._usage] if self._usage is not None else []

    def _grounding_domain(self, category: str | None) -> str:
        """Until the app's labels are set: a grounding domain, else "other" (bounded)."""
        if not category:
            return ""
        return category.lower() if category.lower() in self._config.domains else "other"

    def _asker(self, ask: GroundingAsk) -> Asker:
        return Asker(ask.request_id, self._label(ask.domain))

    def applies(self, ask: GroundingAsk) -> bool:
        """The client's switch if it set one, else whether its category is a grounding domain."""
        if ask.requested is not None:
            return ask.requested
        return ask.domain is not None and ask.domain in self._config.domains

    # ---- non-streamed --------------------------------------------------------

    async def run(
        self, ask: GroundingAsk, generate: Callable[[GenerationRequest], Awaitable[T]], generation: GenerationRequest,
    ) -> tuple[T, Context]:
        """`generate` (which dispatches) called with `generation` grounded; a second call,
        the first cancelled, when the reranker upgrades the context in time."""
        config = self._config  # one config for the whole request, even if ops push a new one
        query, asker = ask.query, self._asker(ask)
        retrieval = await self._retrieve(query, config, asker)
        if retrieval is None:
            return await generate(generation), self._served(asker, NO_CONTEXT)
        first = Context("first-stage", retrieval.hits[: config.top_k])
        served = partial(self._served, asker, relevance=retrieval.relevance)
        if config.rerank != "async":
            context = await self._settled(query, retrieval, config, first)
            return await generate(with_context(generation, context)), served(context)
        answering = asyncio.create_task(_awaited(generate(with_context(generation, first))))
        rerank = asyncio.create_task(self._rerank(query, retrieval, config))
        try:
            await asyncio.wait({answering, rerank}, return_when=asyncio.FIRST_COMPLETED)
            if not rerank.done():
                self._metrics.rerank_outcomes.labels("late").inc()  # the answer was final first
                return answering.result(), served(first)
            upgraded = self._upgrade(first, rerank.result())
            if upgraded is None or answering.done():
                return await answering, served(first)
            await _cancel(answering)
            self._metrics.rerank_outcomes.labels("upgraded").inc()
            return await generate(with_context(generation, upgraded, "-reranked")), served(upgraded)
        finally:
            await _cancel(rerank)
            await _cancel(answering)

    # ---- streamed ------------------------------------------------------------

    async def open_stream(
        self, ask: GroundingAsk, opener: Callable[[GenerationRequest], Awaitable[AsyncIterator[C]]],
        generation: GenerationRequest,
    ) -> tuple[AsyncIterator[C], Context]:
        """`opener` (which dispatches) called with `generation` grounded. It must return once
        the stream's first item is ready (the dispatcher reads it before returning): the
        first token is held while the reranker runs; an upgrade closes that stream unread
        and opens another."""
        config = self._config
        query, asker = ask.query, self._asker(ask)
        retrieval = await self._retrieve(query, config, asker)
        if retrieval is None:
            return await opener(generation), self._served(asker, NO_CONTEXT)
        first = Context("first-stage", retrieval.hits[: config.top_k])
        served = partial(self._served, asker, relevance=retrieval.relevance)
        if config.rerank != "async":
            context = await self._settled(query, retrieval, config, first)
            return await opener(with_context(generation, context)), served(context)
        opening = asyncio.create_task(_awaited(opener(with_context(generation, first))))
        rerank = asyncio.create_task(self._rerank(query, retrieval, config))
        try:
            deadline = self._clock() + config.stream_deadline_s
            # Hold the first token: wait for the reranker (or the deadline); an opening that
            # fails meanwhile fails the request at once.
            while not rerank.done():
                left = deadline - self._clock()
                if left <= 0:
                    break
                pending = {rerank} if opening.done() else {rerank, opening}
                await asyncio.wait(pending, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                if opening.done() and opening.exception() is not None:
                    break
            if opening.done() and opening.exception() is not None:
                return await opening, first  # raises: the engine's failure is the answer
            if not rerank.done():
                self._metrics.rerank_outcomes.labels("deadline_miss").inc()
                return await opening, served(first)
            upgraded = self._upgrade(first, rerank.result())
            if upgraded is None:
                return await opening, served(first)
            await _discard(opening)
            self._metrics.rerank_outcomes.labels("upgraded").inc()
            return await opener(with_context(generation, upgraded, "-reranked")), served(upgraded)
        finally:
            await _cancel(rerank)

    # ---- steps -----------------------------------------------------------------

    async def _retrieve(self, query: str, config: GroundingConfig, asker: Asker) -> Retrieval | None:
        """The first stage's candidates, or None (answer ungrounded) when retrieval fails."""
        try:
            retrieval = await asyncio.to_thread(self._first_stage.hybrid, query, config.candidates)
        except Exception:  # a broken index must not take answers down with it
            logger.exception("first-stage retrieval failed")
            self._failed(asker, "error", None)
            return None
        self._metrics.retrieval_latency.labels("bm25").observe(retrieval.bm25_ms / 1000)
        self._metrics.retrieval_latency.labels("dense").observe(retrieval.dense_ms / 1000)
        if not retrieval.hits or retrieval.relevance < config.min_relevance:
            self._failed(asker, "low_relevance" if retrieval.hits else "empty", retrieval.relevance)
            return None
        return retrieval

    def _failed(self, asker: Asker, reason: Outcome, relevance: float | None) -> None:
        self._metrics.retrieval_failures.labels(reason, asker.category).inc()
        self._record(QueryUsage(request_id=asker.request_id, category=asker.category, outcome=reason, relevance=relevance))

    async def _rerank(self, query: str, retrieval: Retrieval, config: GroundingConfig) -> list[Hit] | None:
        """The candidates reranked, or None when the reranker failed (first stage stands)."""
        started = self._clock()
        try:
            reranking = await self._reranker.rerank(query, [h.chunk.passage() for h in retrieval.hits])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("reranker failed: %s", exc)
            self._metrics.rerank_outcomes.labels("failed").inc()
            return None
        self._metrics.retrieval_latency.labels("rerank").observe(self._clock() - started)
        return reorder(retrieval.hits, reranking)[: config.top_k]

    async def _settled(self, query: str, retrieval: Retrieval, config: GroundingConfig, first: Context) -> Context:
        """The context decided before generating: `off` keeps the first stage; `sync`
        waits (up to its timeout) for the reranker and falls back to the first stage."""
        if config.rerank == "off":
            return first
        return await self._reranked_in_time(query, retrieval, config) or first

    async def _reranked_in_time(self, query: str, retrieval: Retrieval, config: GroundingConfig) -> Context | None:
        try:
            hits = await asyncio.wait_for(self._rerank(query, retrieval, config), config.rerank_timeout_s)
        except asyncio.TimeoutError:
            self._metrics.rerank_outcomes.labels("deadline_miss").inc()
            return None
        if hits is None:
            return None
        in_context = hits[0].chunk.id in {h.chunk.id for h in retrieval.hits[: config.top_k]}
        self._metrics.rerank_outcomes.labels("in_context" if in_context else "upgraded").inc()
        return Context("reranked", hits)

    def _upgrade(self, first: Context, reranked: list[Hit] | None) -> Context | None:
        """The reranked context when its top-1 is missing from the context the generation
        already has. Chunks of one article often trade places (their sections are alike):
        a restart for a top-1 the prompt already holds would cost a whole generation for
        nothing (measured: 70 % of answers restarted, instead of ~20 %)."""
        if reranked is None:
            return None
        if reranked[0].chunk.id in first.ids():
            self._metrics.rerank_outcomes.labels("in_context").inc()
            return None
        return Context("reranked", reranked)

    def _served(self, asker: Asker, context: Context, relevance: float | None = None) -> Context:
        self._metrics.grounded.labels(context.source, asker.category).inc()
        for chunk_id in context.ids():
            self._metrics.chunk_retrievals.labels(chunk_id).inc()
        if context.hits:  # a failure was recorded when retrieval failed
            self._record(QueryUsage(
                request_id=asker.request_id, category=asker.category, outcome="grounded", context=context.source,
                relevance=relevance, chunks=[ServedChunk(chunk_id=h.chunk.id, doc_id=h.chunk.doc_id) for h in context.hits],
            ))
        return context

    def _record(self, usage: QueryUsage) -> None:
        if self._usage is None:
            return
        try:
            self._usage.record(usage)
        except Exception:  # the answer must not fail over its bookkeeping
            logger.exception("recording knowledge-base usage failed")


async def _awaited(awaitable: Awaitable[T]) -> T:
    """The caller's awaitable as a coroutine, which a task needs."""
    return await awaitable


async def _discard(opening: "asyncio.Task[AsyncIterator[C]]") -> None:
    """Drop a stream that was opened (or is opening) for a context that lost."""
    if not opening.done():
        await _cancel(opening)
        return
    if opening.exception() is None:
        await _close(opening.result())


async def _close(stream: AsyncIterator[C]) -> None:
    """Close an opened stream nobody read. An async generator closed before it started runs
    no cleanup (the engine stream inside would generate on for nobody): start it first."""
    try:
        await first_chunk(stream)  # closes it if reading fails
    except Exception:  # noqa: BLE001 - a stream that lost: its failure no longer matters
        return
    await stream.aclose()  # type: ignore[attr-defined]


async def _cancel(task: "asyncio.Task[object]") -> None:
    if task.done():
        if not task.cancelled():
            task.exception()  # retrieved: no "exception was never retrieved" warning
        return
    task.cancel()
    try:
        await task
    except BaseException:  # noqa: BLE001 - its outcome no longer matters
        pass
