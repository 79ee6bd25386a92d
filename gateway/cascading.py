"""The cascade stage: for a cascaded request, the tier the router picked answers first with
its token logprobs; a confident answer is returned, a weak one is escalated to the next tier
up, judged again there unless that is the top tier, and the client is sent the answer that
served (usage: every tier's tokens, as charged).

Cascade routing: the router still runs first, so a query it already scores hard goes
straight to the upper tier; only the answers of lower tiers are judged. Streamed requests
hold the cheap answer until its verdict (a cascade never escalates mid-stream): the client
gets the kept answer, or the upper tier's stream, from the first byte.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Awaitable, Callable, Collection, Sequence

from cascade.config import CascadeConfig
from cascade.metrics import CascadeMetrics
from cascade.trace import CascadeTrace
from cascade.verdict import Verdict, judge, verify
from cascade.verifier import VerifierInput, VerifierModel, load_verifier
from engines.confidence import answer_confidence
from engines.types import GenerationRequest, GenerationResult, TokenLogprob, Usage
from gateway.errors import InvalidRequest
from gateway.state import RequestState

logger = logging.getLogger(__name__)
ESCALATED = "cascade:escalated"
Attempt = Callable[[GenerationRequest], Awaitable[GenerationResult]]


class CascadePlanner:
    """Whether a request runs as a cascade, and the tier above each tier."""

    def __init__(self, config: Callable[[], CascadeConfig], order: Sequence[str]) -> None:
        self._config = config  # read per request: a live push applies to the next one
        self._order = tuple(order)  # cheapest first

    def check(self, asked: bool | None, pinned: bool, plain: bool) -> None:
        """A request that asks for a cascade (`cascade: true`) must be one that can run as one."""
        if not asked:
            return
        if pinned:
            raise InvalidRequest(
                "cascade: true needs model 'auto': a pinned model is served by the tier it names.",
                param="cascade", code="cascade_needs_auto",
            )
        if not plain:
            raise InvalidRequest(
                "cascade: true serves one plain answer: not with tools, n > 1 or a response schema.",
                param="cascade", code="cascade_unsupported",
            )

    def applies(
        self, asked: bool | None, pinned: bool, plain: bool, category: str | None, tier: str,
        spent: Collection[str] = (),
    ) -> bool:
        if pinned or not plain or asked is False or self.above(tier, spent) is None:
            return False
        return bool(asked) or self._config().applies_to(category)

    def above(self, tier: str, spent: Collection[str] = ()) -> str | None:
        """The next tier up; None at the top, or when its budget is `spent`: a weak answer is
        then kept, as routing goes below a spent tier, never past it to a dearer one."""
        index = self._order.index(tier) if tier in self._order else len(self._order)
        upper = self._order[index + 1] if index + 1 < len(self._order) else None
        return None if upper is None or upper in spent else upper

    def config(self) -> CascadeConfig:
        return self._config()


class CascadeStage:
    """Runs a planned cascade on the request's state: `attempt` serves a generation on the
    state's current tier and records what served (a fallback may move it)."""

    def __init__(self, planner: CascadePlanner, metrics: CascadeMetrics, verifiers: VerifierFiles | None = None) -> None:
        self.planner = planner
        self._metrics = metrics
        self._verifiers = verifiers or VerifierFiles()

    async def run(self, state: RequestState, generation: GenerationRequest, attempt: Attempt) -> GenerationResult:
        """Non-streamed: the kept answer, or the upper tier's with both answers' usage."""
        kept, upper = await self.first(state, generation, attempt)
        if kept is not None:
            return kept
        assert state.cascade is not None
        final = await attempt(upper)
        return final.model_copy(update={"usage": with_passed_over(state.cascade, final.usage)})

    async def first(
        self, state: RequestState, generation: GenerationRequest, attempt: Attempt
    ) -> tuple[GenerationResult | None, GenerationRequest]:
        """Each tier below the top answers with logprobs, from the state's tier up: the first
        answer kept is returned (as the client asked it: logprobs only if asked); when every
        one escalates, None and what to ask the top tier, the state moved there (reason
        `cascade:escalated`, no adapter: adapters are the small tier's)."""
        assert state.decision is not None and state.cascade is not None
        config, trace = self.planner.config(), state.cascade
        asked = generation.agentic.logprobs
        probe = generation.model_copy(update={"agentic": generation.agentic.model_copy(
            update={"logprobs": max(asked or 0, config.top_logprobs)})})
        while True:
            answer = await attempt(probe)
            tier = state.decision.tier  # what served it (a fallback may have moved it up already)
            upper = self.planner.above(tier, state.spent_tiers)
            trace.verdict = self._judge(config, state, tier, answer)
            escalate = trace.verdict.escalate and upper is not None
            self._metrics.outcomes.labels(tier, "escalated" if escalate else "kept", trace.verdict.signal).inc()
            if not escalate:
                return _as_asked(answer, asked), generation
            assert upper is not None
            trace.passed_over.append((tier, answer.usage))
            state.decision = state.decision.model_copy(update={"tier": upper, "reason": ESCALATED, "adapter_version": None})
            state.adapter = None
            generation = generation.model_copy(update={"adapter": None})
            probe = probe.model_copy(update={"adapter": None})
            if self.planner.above(upper, state.spent_tiers) is None:  # the top tier: its answer is final, as asked
                return None, generation


    def _judge(self, config: CascadeConfig, state: RequestState, tier: str, answer: GenerationResult) -> Verdict:
        confidence = answer_confidence(answer.logprobs)
        path = config.verifiers.get(tier)
        verifier = self._verifiers.get(path) if path is not None else None
        if verifier is None:
            return judge(config, confidence, tier)
        assert state.decision is not None
        return verify(config, verifier, VerifierInput(
            mean_logprob=confidence.mean_logprob if confidence else None,
            min_logprob=confidence.min_logprob if confidence else None,
            mean_margin=confidence.mean_margin if confidence else None,
            tokens=answer.usage.completion_tokens, answer_chars=len(answer.text),
            router_score=state.decision.score, category=state.category,
        ))


class VerifierFiles:
    """The verifiers live configs name, each file loaded once (a small JSON read on first use);
    one that fails to load is logged once and judged by the logprob signal instead."""

    def __init__(self, load: Callable[[Path], VerifierModel] = load_verifier) -> None:
        self._load = load
        self._loaded: dict[Path, VerifierModel | None] = {}

    def get(self, path: Path) -> VerifierModel | None:
        if path not in self._loaded:
            if len(self._loaded) >= 64:  # a few per config; bound it across many pushes
                self._loaded.clear()
            try:
                self._loaded[path] = self._load(path)
            except (OSError, ValueError) as exc:
                logger.warning("cascade verifier %s not loaded, the logprob signal judges instead: %s", path, exc)
                self._loaded[path] = None
        return self._loaded[path]


def with_passed_over(trace: CascadeTrace, usage: Usage) -> Usage:
    """The served answer's usage plus every passed-over answer's: what the client is charged."""
    for _, part in trace.passed_over:
        usage = _sum(part, usage)
    return usage


def _as_asked(result: GenerationResult, asked: int | None) -> GenerationResult:
    """The client's own logprobs ask: none, or `asked` alternatives per token."""
    if asked is None:
        return result.model_copy(update={"logprobs": None})
    return result.model_copy(update={"logprobs": [_trim(token, asked) for token in result.logprobs or ()]})


def _trim(token: TokenLogprob, k: int) -> TokenLogprob:
    return token.model_copy(update={"top": token.top[:k]})


def _sum(a: Usage, b: Usage) -> Usage:
    return Usage(
        prompt_tokens=a.prompt_tokens + b.prompt_tokens, completion_tokens=a.completion_tokens + b.completion_tokens,
        estimated=a.estimated or b.estimated,
    )
