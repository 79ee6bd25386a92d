"""Mirrors served requests to shadow targets, scores and stores the pairs, runs canaries.

The primary path calls `completed` once its answer is final; from there on everything
happens in the mirror's workers. The shadow call starts after the primary finished: on
shared hardware a concurrent shadow would compete with the very answer being served,
and the comparison needs the primary's text anyway.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from engines.types import AdapterSpec, GenerationRequest, GenerationResult, Tier, ToolCall
from shadow.agreement import Agreement, call_agreement, shown
from shadow.canary import CanaryMonitor
from shadow.config import ShadowConfig
from background.workers import WorkerQueue
from shadow.privacy import kept, kept_tags
from shadow.rules import Served, select_targets
from shadow.journal import RequestRecord, ShadowPair, Journal

logger = logging.getLogger(__name__)


class AdapterLookup(Protocol):
    def spec_for(self, domain: str, version: str | None) -> tuple[str, AdapterSpec] | None:
        """(version, spec) of a domain's active (version None) or given version."""
        ...

    def candidate_of(self, domain: str) -> str | None: ...


class ShadowDispatch(Protocol):
    """How a shadow request reaches a tier: the gateway's own dispatch (breaker, retries,
    timeouts, request metrics labelled `shadow`), never the engine directly, so a dead
    shadow target fails fast and its failures are counted."""

    async def shadow(self, tier: Tier, request: GenerationRequest) -> GenerationResult: ...


class ShadowCounts(Protocol):
    def shadow_outcome(self, target: str, outcome: str) -> None: ...

    def shadow_pair(self, primary_tier: str, target: str, agreement: float, latency_s: float) -> None: ...

    def shadow_dropped(self, queue: str) -> None: ...

    def canary_decision(self, domain: str, decision: str) -> None: ...


@dataclass(frozen=True)
class ShadowTarget:
    """One side of a shadow pair: a tier, or the small tier with an adapter version."""

    label: str  # large | small | small:<domain>@<version>
    kind: str  # large | small | adapter | candidate (metrics label: bounded)
    tier: Tier
    adapter: AdapterSpec | None = None


@dataclass(frozen=True)
class ShadowAnswer:
    target: ShadowTarget
    text: str
    latency_s: float
    calls: tuple[ToolCall, ...] = ()  # the tools it called, compared by name and arguments

    def shown(self) -> str:
        return shown(self.text, self.calls)


class ShadowService:
    def __init__(
        self,
        dispatch: ShadowDispatch,
        store: Journal,
        agreement: Agreement,
        metrics: ShadowCounts,
        config: ShadowConfig,
        adapters: AdapterLookup | None = None,
        canary: CanaryMonitor | None = None,
        draw: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._dispatch = dispatch
        self._store = store
        self._agreement = agreement
        self._metrics = metrics
        self._adapters = adapters
        self._canary = canary
        self._draw = draw
        self._clock = clock
        self.config = config
        self.mirror = WorkerQueue(
            config.queue_size, config.concurrency, on_failure=lambda: metrics.shadow_outcome("mirror", "failed")
        )
        self.journal = WorkerQueue(
            queue_size=1024, concurrency=1, on_failure=lambda: metrics.shadow_outcome("journal", "failed")
        )

    @property
    def store(self) -> Journal:
        return self._store

    def configure(self, config: ShadowConfig) -> None:
        self.config = config
        self.mirror.configure(config.queue_size, config.concurrency)

    def start(self) -> None:
        self.mirror.start()
        self.journal.start()

    async def stop(self) -> None:
        await self.mirror.stop()
        await self.journal.stop()

    # ---- the primary path: never waits, never raises --------------------------------

    def wants(self, mode: str | None) -> bool:
        """Whether an answer served in `mode` would be journaled or mirrored: the caller skips
        building its record when not (the common case with both off: no work per request)."""
        return self._journals(mode) or bool(self.config.rules)

    def _journals(self, mode: str | None) -> bool:
        return self.config.journal.enabled or mode == "draft"  # a draft is journaled for its feedback

    def completed(
        self, served: Served, generation: GenerationRequest, prompt: str, text: str, latency_s: float,
        calls: Sequence[ToolCall] = (),
    ) -> None:
        if self._journals(served.mode):
            tags = served.tags()
            policy = self.config.journal.policy(tags)
            record = RequestRecord(
                request_id=served.request_id, target=served.target, tags=kept_tags(tags, policy),
                prompt=kept(prompt, policy), draft=kept(shown(text, calls), policy), key_id=served.key_id,
            )
            if not self.journal.offer(lambda: asyncio.to_thread(self._store.add_request, record)):
                self._metrics.shadow_dropped("journal")
        targets = select_targets(self.config.rules, served, self._draw)
        if not targets:
            return
        primary = ShadowAnswer(ShadowTarget(served.target, served.tier, served.tier), text, latency_s, tuple(calls))
        job = lambda: self._mirror_job(served, generation, prompt, primary, targets)  # noqa: E731
        if not self.mirror.offer(job):
            self._metrics.shadow_dropped("mirror")

    # ---- shadow workers ---------------------------------------------------------------

    async def _mirror_job(
        self, served: Served, generation: GenerationRequest, prompt: str, primary: ShadowAnswer,
        targets: list[str],
    ) -> None:
        resolved = self._resolve_all(targets, served)
        answers: dict[str, ShadowAnswer] = {}
        for i, target in enumerate(resolved):
            answer = await self._ask(target, generation, f"{served.request_id}-shadow-{i}")
            if answer is not None:
                answers[target.label] = answer
        for answer in answers.values():
            await self._store_pair(served, prompt, primary, answer)
        reference = answers.get(self.config.canary.reference)
        for answer in answers.values():
            if answer.target.kind == "candidate" and reference is not None:
                # The canary's own pair with the reference: judged like the active version.
                await self._store_pair(served, prompt, answer, reference)
        if self._canary is not None and served.domain:
            verdict = await asyncio.to_thread(self._canary.review, served.domain, self.config.canary)
            if verdict is not None and verdict.decision != "wait":
                logger.info("canary %s: %s (%s)", served.domain, verdict.decision, verdict.reason)

    def _resolve_all(self, targets: list[str], served: Served) -> list[ShadowTarget]:
        resolved = [t for name in targets if (t := self._resolve(name, served)) is not None]
        labels = [t.label for t in resolved]
        if any(t.kind == "candidate" for t in resolved) and self.config.canary.reference not in labels:
            reference = self._resolve(self.config.canary.reference, served)
            if reference is not None and reference.label != served.target:
                resolved.append(reference)
        # Unique, and never what answered the primary (e.g. `small:refund` = the active one).
        unique: dict[str, ShadowTarget] = {}
        for target in resolved:
            if target.label != served.target:
                unique.setdefault(target.label, target)
        return list(unique.values())

    def _resolve(self, name: str, served: Served) -> ShadowTarget | None:
        if name in ("small", "large"):
            return ShadowTarget(name, name, name)  # type: ignore[arg-type]
        if self._adapters is None:
            return None
        if name == "candidate":
            version = self._adapters.candidate_of(served.domain) if served.domain else None
            found = self._adapters.spec_for(served.domain, version) if served.domain and version else None
            kind, domain = "candidate", served.domain
        else:
            domain, _, pinned = name.removeprefix("small:").partition("@")
            found = self._adapters.spec_for(domain, pinned or None)
            kind = "adapter"
        if found is None:
            return None
        version, spec = found
        return ShadowTarget(f"small:{domain}@{version}", kind, "small", spec)

    async def _ask(
        self, target: ShadowTarget, generation: GenerationRequest, request_id: str
    ) -> ShadowAnswer | None:
        sampling = generation.sampling
        if self.config.max_tokens is not None:
            capped = min(sampling.max_tokens or self.config.max_tokens, self.config.max_tokens)
            sampling = sampling.model_copy(update={"max_tokens": capped})
        request = generation.model_copy(
            update={"request_id": request_id, "adapter": target.adapter, "sampling": sampling}
        )
        started = self._clock()
        try:
            result = await asyncio.wait_for(self._dispatch.shadow(target.tier, request), self.config.timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a shadow failure is counted, never propagated
            logger.info("shadow call to %s failed: %s", target.label, exc)
            self._metrics.shadow_outcome(target.kind, "failed")
            return None
        return ShadowAnswer(target, result.text, self._clock() - started, tuple(result.tool_calls))

    async def _store_pair(self, served: Served, prompt: str, first: ShadowAnswer, second: ShadowAnswer) -> None:
        if first.calls or second.calls:
            agreement = call_agreement(first.calls, second.calls)
        else:
            agreement = await asyncio.to_thread(self._agreement.score, first.text, second.text)
        tags = served.tags()
        policy = self.config.journal.policy(tags)  # scored on the whole texts, stored as the policy says
        pair = ShadowPair(
            request_id=served.request_id, tags=kept_tags(tags, policy), primary_target=first.target.label,
            shadow_target=second.target.label, prompt=kept(prompt, policy), primary_text=kept(first.shown(), policy),
            shadow_text=kept(second.shown(), policy), primary_latency_s=first.latency_s,
            shadow_latency_s=second.latency_s, agreement=agreement,
        )
        await asyncio.to_thread(self._store.add_pair, pair)
        self._metrics.shadow_outcome(second.target.kind, "stored")
        self._metrics.shadow_pair(first.target.kind, second.target.kind, agreement, second.latency_s)
