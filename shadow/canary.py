"""Adapter canaries: judge a version against the one it would replace, act on the verdict.

The guardrail metric is agreement with the reference tier (higher is better), measured on
shadow pairs; once enough answers are rated, the share of answers *not* rated negative
is a second guardrail. A version is worse when a guardrail is lower by more than
`margin` (relative) over at least the configured minimum samples on both sides.

- A candidate (served beside the active version on mirrored traffic only) that is worse
  is cleared from the candidate slot: rejected.
- A promoted version (the active one) that is worse than the version active before it
  is rolled back to that version.
Every decision is an event in the store and a metric.
"""

from __future__ import annotations

import logging
from typing import Callable, Literal

from pydantic import BaseModel

from adapters.errors import StaleRollback
from adapters.registry import AdapterRegistry, DomainState, previous_active
from shadow.config import CanaryConfig
from shadow.journal import ShadowEvent, Journal, Stats

logger = logging.getLogger(__name__)

Decision = Literal["wait", "pass", "reject", "rollback", "keep"]


class Verdict(BaseModel):
    decision: Decision
    reason: str


def _worse(new: float, old: float, margin: float) -> bool:
    return new < old * (1.0 - margin)


def judge(
    incumbent: Stats, challenger: Stats, min_samples: int, margin: float,
    incumbent_ok: Stats | None = None, challenger_ok: Stats | None = None, min_feedback: int = 1,
    worse: Decision = "reject", fine: Decision = "pass",
) -> Verdict:
    """Pure: `challenger` against `incumbent` on agreement, then on rated answers.

    `*_ok` are the shares of rated answers not rated negative (None = no feedback)."""
    if incumbent.n < min_samples or challenger.n < min_samples:
        return Verdict(decision="wait", reason=f"agreement samples {challenger.n}/{incumbent.n} < {min_samples}")
    assert incumbent.mean is not None and challenger.mean is not None
    if _worse(challenger.mean, incumbent.mean, margin):
        return Verdict(decision=worse, reason=(
            f"agreement {challenger.mean:.3f} vs {incumbent.mean:.3f}: more than {margin:.0%} lower"
        ))
    rated = incumbent_ok is not None and challenger_ok is not None
    if rated and incumbent_ok.n >= min_feedback and challenger_ok.n >= min_feedback:
        assert incumbent_ok.mean is not None and challenger_ok.mean is not None
        if _worse(challenger_ok.mean, incumbent_ok.mean, margin):
            return Verdict(decision=worse, reason=(
                f"answers not rated negative {challenger_ok.mean:.3f} vs {incumbent_ok.mean:.3f}: "
                f"more than {margin:.0%} lower"
            ))
    return Verdict(decision=fine, reason=f"agreement {challenger.mean:.3f} vs {incumbent.mean:.3f}")


def _ok_share(rate: Stats) -> Stats:
    return Stats(n=rate.n, mean=None if rate.mean is None else 1.0 - rate.mean)


class CanaryMonitor:
    """Reviews one domain after each scored pair; acts through the adapter registry."""

    def __init__(
        self,
        store: Journal,
        registry: AdapterRegistry,
        on_decision: Callable[[str, str, Decision], None] = lambda domain, version, decision: None,
    ) -> None:
        self._store = store
        self._registry = registry
        self._on_decision = on_decision
        self._passed: set[str] = set()

    def review(self, domain: str, config: CanaryConfig) -> Verdict | None:
        entry = self._registry.state().domains.get(domain)
        if entry is None or entry.active is None:
            return None
        if entry.candidate is not None:
            verdict = self._review_candidate(domain, entry, config)
            if verdict.decision != "wait":
                return verdict
        return self._review_promoted(domain, entry, config)

    def _target(self, domain: str, version: str) -> str:
        return f"small:{domain}@{version}"

    def _review_candidate(self, domain: str, entry: DomainState, config: CanaryConfig) -> Verdict:
        assert entry.active is not None and entry.candidate is not None
        active, candidate = self._target(domain, entry.active), self._target(domain, entry.candidate)
        ours, theirs = self._store.paired_agreement(active, candidate, config.reference)
        verdict = judge(ours, theirs, config.min_samples, config.margin)
        if verdict.decision == "reject" and config.auto_reject:
            self._registry.set_candidate(domain, None)
            self._record("canary_rejected", domain, entry.candidate, verdict, against=entry.active)
        elif verdict.decision == "pass" and entry.candidate not in self._passed:
            self._passed.add(entry.candidate)
            self._record("canary_passed", domain, entry.candidate, verdict, against=entry.active)
        return verdict

    def _review_promoted(self, domain: str, entry: DomainState, config: CanaryConfig) -> Verdict | None:
        previous = previous_active(entry)
        if previous is None or entry.active is None:
            return None
        now, before = self._target(domain, entry.active), self._target(domain, previous)
        verdict = judge(
            self._store.agreement(before, config.reference), self._store.agreement(now, config.reference),
            config.min_samples, config.margin,
            _ok_share(self._store.negative_rate(before)), _ok_share(self._store.negative_rate(now)),
            config.min_feedback, worse="rollback", fine="keep",
        )
        if verdict.decision == "rollback" and config.auto_rollback:
            self._roll_back(domain, entry.active, previous, verdict)
        return verdict

    def _roll_back(self, domain: str, judged: str, previous: str, verdict: Verdict) -> None:
        try:
            # The registry compares `judged` with the active version under its lock: another
            # ingress replica may have rolled back already, or activated a newer version since
            # this verdict, and that one has not been judged yet.
            self._registry.rollback(domain, previous, expected_active=judged)
        except StaleRollback as exc:
            logger.info("canary: nothing to roll back: %s", exc.message)
            return
        self._record("rolled_back", domain, judged, verdict, against=previous)

    def _record(self, kind: str, domain: str, version: str, verdict: Verdict, against: str) -> None:
        logger.warning("canary: %s %s (%s)", kind, version, verdict.reason)
        self._store.add_event(ShadowEvent(
            kind=kind, subject=version, detail={"domain": domain, "against": against, "reason": verdict.reason},
        ))
        self._on_decision(domain, version, verdict.decision)
