"""The router canaries on this replica: a candidate version scores live `auto` requests too
(scores only, no generation), and the comparison is reviewed periodically.

Two kinds, one loop (`Canary`):
- the pair's (`RouterCanary`): the candidate of the router registry beside the active
  version, on every learned `auto` decision, cut like the live policy (share window or
  probability); graded by the outcomes file and by the shadow pairs of those requests;
- a step's (`StepCanary`): the candidate of a tier's step registry, on the queries that
  reached the tier below it, held to the cut the active step router was held to (none
  active: the rung's probability, against where the pair's score sent the query); graded by
  that rung's outcomes file (the two tiers' scores).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from engines.types import Tier
from router.canary import CanaryFigures, CanaryVerdict, Graded, RouterCanaryConfig, compare, judge, prompt_key
from router.canary_store import CanaryStore, RouterScore
from router.config import RoutingConfig
from router.data import load_graded
from router.decision import RoutingDecision, RoutingQuery
from router.errors import StaleChange
from router.flywheel import is_flywheel_pair
from router.loading import LoadedRouter
from router.registry import RouterRegistry
from router.telemetry import CanaryCounters
from router.thresholds import ShareThreshold, base_threshold
from router.versions import RouterVersions

logger = logging.getLogger(__name__)

MAX_PENDING = 64
NO_STEP = "none"  # the active "version" of a step with no step router: the pair's score climbs


def _uncounted(task: str) -> None:
    return None


@dataclass(frozen=True)
class Sampled:
    """A live decision in a canary's sample: where the active version sent it (of the pair)
    and the cut the candidate's score is held to (None: the pair's live cut)."""

    active_tier: Tier
    active_score: float | None
    cut: float | None = None


class GradedFile:
    """An outcomes file's grades of one pair of tiers, read again when the file changes."""

    def __init__(self, pair: tuple[Tier, Tier]) -> None:
        self._pair = pair
        self._cached: tuple[str, float, Graded] | None = None  # (path, mtime, outcomes)

    def read(self, path: str | None) -> Graded:
        if path is None:
            return {}
        file = Path(path)
        if not file.exists():  # configured ahead of the grading that writes it
            return {}
        mtime = file.stat().st_mtime
        if self._cached is None or self._cached[:2] != (path, mtime):
            self._cached = (path, mtime, load_graded(file, self._pair))
        return self._cached[2]


class Canary:
    """One registry's candidate against its active version; subclasses say which decisions
    it samples, how the candidate's score becomes a tier, and what grades the rows."""

    pair: tuple[Tier, Tier] = ("small", "large")
    kind = "router_canary"  # of the journal's events: <kind>_promoted, <kind>_rejected

    def __init__(
        self, store: CanaryStore, registry: RouterRegistry, versions: RouterVersions,
        config: Callable[[], RoutingConfig], counters: CanaryCounters,
        on_failure: Callable[[str], None] = _uncounted,
    ) -> None:
        self._store = store
        self._registry = registry
        self._versions = versions
        self._config = config
        self._counters = counters
        self._failed = on_failure  # counts a failed score (the ingress's background failures)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="router-canary")
        self._pending: set[asyncio.Task[None]] = set()
        self._graded = GradedFile(self.pair)

    # ---- what a subclass says --------------------------------------------------------

    def _sample(self, query: RoutingQuery, decision: RoutingDecision) -> Sampled | None:
        raise NotImplementedError

    def _candidate_tier(self, candidate: LoadedRouter, score: float, sampled: Sampled) -> Tier:
        raise NotImplementedError

    def _guardrails(self) -> RouterCanaryConfig:
        raise NotImplementedError

    def _target_share(self, figures: CanaryFigures) -> float:
        raise NotImplementedError

    def _label(self, version: str) -> str:
        """The version as the store keeps it (a step's registries name versions alike)."""
        return version

    def _grades(self, rows: Sequence[RouterScore], config: RouterCanaryConfig) -> Graded:
        return self._graded.read(config.outcomes_file)

    # ---- scoring beside the live decision --------------------------------------------

    def observe(self, query: RoutingQuery, decision: RoutingDecision, request_id: str) -> None:
        """Called on the event loop after an `auto` decision."""
        candidate = self._versions.candidate
        if candidate is None:
            return
        sampled = self._sample(query, decision)
        if sampled is None:
            return
        if len(self._pending) >= MAX_PENDING:
            self._counters.dropped()
            return
        task = asyncio.get_running_loop().create_task(
            self._score(candidate, self._active_version(), query, sampled, request_id or uuid.uuid4().hex)
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _score(
        self, candidate: LoadedRouter, active: str, query: RoutingQuery, sampled: Sampled, request_id: str,
    ) -> None:
        try:
            loop = asyncio.get_running_loop()
            score = await loop.run_in_executor(self._executor, candidate.score, query.text, query.category, query.asks)
            record = RouterScore(
                request_id=request_id, prompt_key=prompt_key(query.text), category=query.category,
                active_version=self._label(active), candidate_version=self._label(candidate.version),
                active_tier=sampled.active_tier, candidate_tier=self._candidate_tier(candidate, score, sampled),
                active_score=sampled.active_score, candidate_score=score,
            )
            await asyncio.to_thread(self._store.add_router_score, record)
        except Exception:  # a shadow score must never surface; counted and logged
            logger.exception("%s: scoring with %s failed", self.kind, candidate.version)
            self._failed(f"{self.kind}_score")

    # ---- review ----------------------------------------------------------------------

    async def review(self) -> CanaryVerdict | None:
        state = await asyncio.to_thread(self._registry.state)
        if state.candidate is None or not self._reviewable():
            return None
        active = self._active_version()
        config = self._guardrails()
        rows = await asyncio.to_thread(self._store.router_scores, self._label(active), self._label(state.candidate))
        graded = await asyncio.to_thread(self._grades, rows, config)
        figures = compare([(r.active_tier, r.candidate_tier, r.prompt_key) for r in rows], graded, self.pair)
        verdict = judge(figures, config, self._target_share(figures))
        self._counters.samples(figures.samples)
        if verdict.decision == "promote" and config.auto_promote:
            await asyncio.to_thread(self._act, "promote", state.candidate, active, verdict)
        elif verdict.decision == "reject" and config.auto_reject:
            await asyncio.to_thread(self._act, "reject", state.candidate, active, verdict)
        return verdict

    def _reviewable(self) -> bool:
        return True

    def _active_version(self) -> str:
        return self._versions.active.version if self._versions.active is not None else NO_STEP

    @property
    def name(self) -> str:
        """Its background task's name."""
        return self.kind

    def _act(self, decision: str, candidate: str, active: str, verdict: CanaryVerdict) -> None:
        try:
            if decision == "promote":
                self._registry.activate(candidate, expected_candidate=candidate, reason=verdict.reason)
            else:
                self._registry.set_candidate(None, expected=candidate, reason=verdict.reason)
        except StaleChange as exc:  # another replica acted first, or ops changed the slot
            logger.info("%s: %s", self.kind, exc.message)
            return
        kind = f"{self.kind}_promoted" if decision == "promote" else f"{self.kind}_rejected"
        logger.warning("%s: %s %s against %s (%s)", self.kind, kind, candidate, active, verdict.reason)
        self._store.record_event(kind, candidate, {
            "against": active, "reason": verdict.reason, **self._detail(), **verdict.figures.model_dump(),
        })
        self._counters.decided(decision)

    def _detail(self) -> dict[str, str]:
        return {}


class RouterCanary(Canary):
    """The pair router's candidate on every learned `auto` decision."""

    def __init__(
        self, store: CanaryStore, registry: RouterRegistry, versions: RouterVersions,
        config: Callable[[], RoutingConfig], counters: CanaryCounters,
        on_failure: Callable[[str], None] = _uncounted,
    ) -> None:
        super().__init__(store, registry, versions, config, counters, on_failure)
        self._shares: dict[str, ShareThreshold] = {}

    def _sample(self, query: RoutingQuery, decision: RoutingDecision) -> Sampled | None:
        if self._versions.active is None or not decision.reason.startswith("learned:"):
            return None
        return Sampled(active_tier=decision.tier, active_score=decision.score)

    def _candidate_tier(self, candidate: LoadedRouter, score: float, sampled: Sampled) -> Tier:
        share = self._share(candidate)
        tier: Tier = "large" if score >= base_threshold(self._config().learned.thresholds, share) else "small"
        share.observe(score)
        return tier

    def _share(self, candidate: LoadedRouter) -> ShareThreshold:
        thresholds = self._config().learned.thresholds
        share = self._shares.get(candidate.version)
        if share is None or share.window != thresholds.window:
            self._shares = {candidate.version: ShareThreshold(thresholds.window, candidate.training_scores)}
        return self._shares[candidate.version]

    def _guardrails(self) -> RouterCanaryConfig:
        return self._config().canary

    def _target_share(self, figures: CanaryFigures) -> float:
        return self._config().learned.thresholds.large_share

    def _reviewable(self) -> bool:
        return self._versions.active is not None

    def _grades(self, rows: Sequence[RouterScore], config: RouterCanaryConfig) -> Graded:
        graded = dict(self._graded.read(config.outcomes_file))
        if config.shadow_threshold is None:
            return graded
        return {**self._mirrored(rows, config.shadow_threshold), **graded}  # a graded golden set beats an agreement label

    def _mirrored(self, rows: Sequence[RouterScore], threshold: float) -> dict[str, tuple[float, float]]:
        """Outcomes from the shadow pairs of these very requests (large primary, small
        mirrored): the flywheel's labels, by the request's prompt key."""
        keys = {r.request_id: r.prompt_key for r in rows}
        graded = {}
        for pair in self._store.pairs_of(list(keys)):
            if is_flywheel_pair(pair) and pair.agreement is not None:
                graded[keys[pair.request_id]] = (float(pair.agreement >= threshold), 1.0)
        return graded


class StepCanary(Canary):
    """A step router's candidate on the queries that reached the tier below its tier."""

    kind = "router_step_canary"

    def __init__(
        self, tier: Tier, order: Sequence[Tier], store: CanaryStore, registry: RouterRegistry,
        versions: RouterVersions, config: Callable[[], RoutingConfig], counters: CanaryCounters,
        on_failure: Callable[[str], None] = _uncounted,
    ) -> None:
        self._tier, self._order = tier, tuple(order)
        self.pair = (self._order[self._order.index(tier) - 1], tier)
        super().__init__(store, registry, versions, config, counters, on_failure)

    def _sample(self, query: RoutingQuery, decision: RoutingDecision) -> Sampled | None:
        below, tier = self.pair
        if tier not in self._config().learned.upper:
            return None  # no rung: `auto` never climbs to this tier
        step = decision.steps.get(tier)
        if step is not None:  # the active step router judged this climb
            climbed = step.score >= step.threshold
            return Sampled(active_tier=tier if climbed else below, active_score=step.score, cut=step.threshold)
        if self._versions.active is not None or decision.score is None or decision.tier not in self._order:
            return None  # a step router is active and was not asked: the query stayed below `below`
        reached = self._order.index(decision.tier)
        if reached < self._order.index(below):
            return None
        # No step router yet: the pair's score decided this climb; the candidate is held to
        # the cut a step router would be (the category's bar for the tier, else the rung's).
        climbed = reached >= self._order.index(tier)
        return Sampled(active_tier=tier if climbed else below, active_score=None, cut=self._cut(query))

    def _cut(self, query: RoutingQuery) -> float:
        learned = self._config().learned
        bar = learned.category_bars.get(query.category or "", {}).get(self._tier)
        return bar if bar is not None else learned.upper[self._tier].probability

    def _candidate_tier(self, candidate: LoadedRouter, score: float, sampled: Sampled) -> Tier:
        below, tier = self.pair
        return tier if sampled.cut is not None and score >= sampled.cut else below

    def _guardrails(self) -> RouterCanaryConfig:
        rung = self._config().learned.upper.get(self._tier)
        return rung.canary if rung is not None else RouterCanaryConfig()

    def _target_share(self, figures: CanaryFigures) -> float:
        return figures.active_large_share or 0.0  # drift from how often the active climbs

    def _label(self, version: str) -> str:
        return f"{self._tier}/{version}"

    def _detail(self) -> dict[str, str]:
        return {"tier": self._tier}

    @property
    def name(self) -> str:
        return f"{self.kind}_{self._tier}"


def observe_all(canaries: Sequence[Canary]) -> Callable[[RoutingQuery, RoutingDecision, str], None]:
    """One decision hook telling every canary (the pair's and each step's)."""

    def observe(query: RoutingQuery, decision: RoutingDecision, request_id: str) -> None:
        for canary in canaries:
            canary.observe(query, decision, request_id)

    return observe
