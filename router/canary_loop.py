"""The router canary on this replica: the candidate version scores each live `auto`
request too (scores only, no generation), and the comparison is reviewed periodically.

Scoring runs on its own single worker thread, after the live decision, so the canary
never delays a request; beyond `MAX_PENDING` waiting scores new ones are dropped and
counted. Each replica reviews the shared store; promotion and rejection are
compare-and-set in the registry, so two replicas reaching the same verdict act once.
Scores, the pairs that grade them and the verdicts go through a `CanaryStore` (the shadow
store, handed in by the wiring).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

from engines.types import Tier
from router.canary import CanaryVerdict, Graded, compare, judge, prompt_key
from router.canary_store import CanaryStore, RouterScore
from router.config import RoutingConfig
from router.data import load_graded
from router.decision import RoutingDecision, RoutingQuery
from router.errors import StaleChange
from router.flywheel import is_flywheel_pair
from router.loading import LoadedRouter
from router.registry import RouterRegistry
from router.telemetry import RouterMetrics
from router.thresholds import ShareThreshold, base_threshold
from router.versions import RouterVersions

logger = logging.getLogger(__name__)

MAX_PENDING = 64


def _uncounted(task: str) -> None:
    return None


class RouterCanary:
    def __init__(
        self, store: CanaryStore, registry: RouterRegistry, versions: RouterVersions,
        config: Callable[[], RoutingConfig], metrics: RouterMetrics,
        on_failure: Callable[[str], None] = _uncounted,
    ) -> None:
        self._store = store
        self._registry = registry
        self._versions = versions
        self._config = config
        self._metrics = metrics
        self._failed = on_failure  # counts a failed score (the ingress's background failures)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="router-canary")
        self._shares: dict[str, ShareThreshold] = {}
        self._pending: set[asyncio.Task[None]] = set()
        self._graded: tuple[str, float, Graded] | None = None  # (path, mtime, outcomes)

    # ---- scoring beside the live decision --------------------------------------------

    def observe(self, query: RoutingQuery, decision: RoutingDecision, request_id: str) -> None:
        """Called on the event loop after a learned `auto` decision."""
        candidate, active = self._versions.candidate, self._versions.active
        if candidate is None or active is None or not decision.reason.startswith("learned:"):
            return
        if len(self._pending) >= MAX_PENDING:
            self._metrics.canary_dropped.inc()
            return
        task = asyncio.get_running_loop().create_task(
            self._score(candidate, active.version, query, decision, request_id or uuid.uuid4().hex)
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _score(
        self, candidate: LoadedRouter, active: str, query: RoutingQuery, decision: RoutingDecision,
        request_id: str,
    ) -> None:
        try:
            loop = asyncio.get_running_loop()
            score = await loop.run_in_executor(self._executor, candidate.score, query.text, query.category, query.asks)
            share = self._share(candidate)
            tier: Tier = "large" if score >= base_threshold(self._config().learned.thresholds, share) else "small"
            share.observe(score)
            record = RouterScore(
                request_id=request_id, prompt_key=prompt_key(query.text), category=query.category,
                active_version=active, candidate_version=candidate.version, active_tier=decision.tier,
                candidate_tier=tier, active_score=decision.score, candidate_score=score,
            )
            await asyncio.to_thread(self._store.add_router_score, record)
        except Exception:  # a shadow score must never surface; counted and logged
            logger.exception("router canary: scoring with %s failed", candidate.version)
            self._failed("router_canary_score")

    def _share(self, candidate: LoadedRouter) -> ShareThreshold:
        thresholds = self._config().learned.thresholds
        share = self._shares.get(candidate.version)
        if share is None or share.window != thresholds.window:
            self._shares = {candidate.version: ShareThreshold(thresholds.window, candidate.training_scores)}
        return self._shares[candidate.version]

    # ---- review ----------------------------------------------------------------------

    async def review(self) -> CanaryVerdict | None:
        state = await asyncio.to_thread(self._registry.state)
        active = self._versions.active
        if state.candidate is None or active is None:
            return None
        config = self._config()
        rows = await asyncio.to_thread(self._store.router_scores, active.version, state.candidate)
        graded = dict(await asyncio.to_thread(self._outcomes, config.canary.outcomes_file))
        if config.canary.shadow_threshold is not None:
            mirrored = await asyncio.to_thread(self._mirrored, rows, config.canary.shadow_threshold)
            graded = {**mirrored, **graded}  # a graded golden set beats an agreement label
        share = config.learned.thresholds.large_share
        figures = compare([(r.active_tier, r.candidate_tier, r.prompt_key) for r in rows], graded)
        verdict = judge(figures, config.canary, share)
        self._metrics.canary_samples.set(figures.samples)
        if verdict.decision == "promote" and config.canary.auto_promote:
            await asyncio.to_thread(self._act, "promote", state.candidate, active.version, verdict)
        elif verdict.decision == "reject" and config.canary.auto_reject:
            await asyncio.to_thread(self._act, "reject", state.candidate, active.version, verdict)
        return verdict

    def _act(self, decision: str, candidate: str, active: str, verdict: CanaryVerdict) -> None:
        try:
            if decision == "promote":
                self._registry.activate(candidate, expected_candidate=candidate, reason=verdict.reason)
            else:
                self._registry.set_candidate(None, expected=candidate, reason=verdict.reason)
        except StaleChange as exc:  # another replica acted first, or ops changed the slot
            logger.info("router canary: %s", exc.message)
            return
        kind = "router_canary_promoted" if decision == "promote" else "router_canary_rejected"
        logger.warning("router canary: %s %s against %s (%s)", kind, candidate, active, verdict.reason)
        self._store.record_event(kind, candidate, {
            "against": active, "reason": verdict.reason, **verdict.figures.model_dump(),
        })
        self._metrics.canary_decisions.labels(decision).inc()

    def _mirrored(self, rows: Sequence[RouterScore], threshold: float) -> dict[str, tuple[float, float]]:
        """Outcomes from the shadow pairs of these very requests (large primary, small
        mirrored): the flywheel's labels, by the request's prompt key."""
        keys = {r.request_id: r.prompt_key for r in rows}
        graded = {}
        for pair in self._store.pairs_of(list(keys)):
            if is_flywheel_pair(pair) and pair.agreement is not None:
                graded[keys[pair.request_id]] = (float(pair.agreement >= threshold), 1.0)
        return graded

    def _outcomes(self, path: str | None) -> Graded:
        if path is None:
            return {}
        from pathlib import Path

        file = Path(path)
        if not file.exists():  # configured ahead of the grading that writes it
            return {}
        mtime = file.stat().st_mtime
        if self._graded is None or self._graded[:2] != (path, mtime):
            self._graded = (path, mtime, load_graded(file))
        return self._graded[2]
