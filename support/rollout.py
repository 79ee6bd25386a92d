"""Per-category rollout (design note 002): each category's mode, its figures from the
feedback journal, its gates, and the changes ops or the automatic review make.

Blocking (the feedback journal, the state file): callers on an event loop use
`asyncio.to_thread`.
Figures count from when the category entered its current mode (within the window): a
category demoted back to draft earns its promotion again on new drafts, so an automatic
promotion and demotion cannot flap on the same evidence.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from pydantic import BaseModel

from support.config import MODES, Mode, RolloutConfig, category_key
from support.errors import GateNotCleared
from support.ratings import Ratings, RatingsJournal
from support.rollout_gate import GateResult, GuardrailResult, guardrail_breached, promotion_gate
from support.rollout_state import Reason, RolloutBook, RolloutEvent, StaleRolloutChange, now_utc

ROLLOUT_TAG = "rollout_category"  # the journal tag the edge writes (shadow.rules.Served)
# Categories a client named (not the config, not the state file) that a status or review
# reads: the most rated ones. Each costs queries per review, and clients name categories freely.
MAX_RATED_CATEGORIES = 50


class CategoryStatus(BaseModel):
    category: str
    mode: Mode
    since: datetime | None = None  # None: the config's mode, never changed
    by: str | None = None
    drafts: Ratings  # rated drafts: the promotion's evidence
    promotion: GateResult
    answers: Ratings | None = None  # rated auto answers (auto categories): the guardrail's
    guardrail: GuardrailResult | None = None

    def evidence(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"category", "since", "by"})


class Rollout:
    def __init__(
        self, book: RolloutBook, store: RatingsJournal | None, clock: Callable[[], datetime] = now_utc,
        on_change: Callable[[RolloutEvent], None] = lambda event: None,
    ) -> None:
        self.book = book
        self._store = store
        self._clock = clock
        self._on_change = on_change

    # ---- reading -------------------------------------------------------------------

    def status(self, config: RolloutConfig, also: Iterable[str] = ()) -> list[CategoryStatus]:
        """Every category the config or the state file names, and the `MAX_RATED_CATEGORIES`
        most rated others in the journal."""
        names = {*config.categories, *self.book.state().categories}
        names.update(k for c in also if (k := category_key(c)))
        if self._store is not None:
            rated = self._store.rated_tag_values(ROLLOUT_TAG, self._window_start(config), MAX_RATED_CATEGORIES)
            names.update(k for c in rated if (k := category_key(c)))
        return [self.category_status(config, name) for name in sorted(names)]

    def category_status(self, config: RolloutConfig, category: str) -> CategoryStatus:
        entry = self.book.state().categories.get(category)
        mode = entry.mode if entry else config.initial_mode(category)
        start = self._window_start(config)
        since = max(start, entry.since) if entry else start
        drafts = self._ratings(category, "draft", since if mode == "draft" else start, config)
        status = CategoryStatus(
            category=category, mode=mode, since=entry.since if entry else None, by=entry.by if entry else None,
            drafts=drafts, promotion=promotion_gate(drafts, config.promotion_gate),
        )
        if mode == "auto":
            status.answers = self._ratings(category, "auto", since, config)
            status.guardrail = guardrail_breached(
                status.answers, config.guardrail(category), config.demote_min_samples
            )
        return status

    # ---- changing ------------------------------------------------------------------

    def change(
        self, config: RolloutConfig, category: str, to: Mode | None, *, by: str, promote: bool,
        note: str | None = None, force: bool = False,
    ) -> tuple[CategoryStatus, RolloutEvent | None]:
        """A manual change: to `to`, or one phase up (promote) or down. Customer-facing
        answers need the promotion gate cleared, unless forced (the event says so)."""
        key = category_key(category)
        if key is None:
            raise ValueError("a category name must not be empty")
        status = self.category_status(config, key)
        target = to or _step(status.mode, +1 if promote else -1)
        if target == "auto" and status.mode != "auto" and not status.promotion.cleared and not force:
            raise GateNotCleared(
                f"{key}: the promotion gate is not cleared ({status.promotion.why}); "
                '--force (admin API: "force": true) promotes anyway'
            )
        evidence = {**status.evidence(), "forced": force and not status.promotion.cleared}
        event = self._write(key, target, status.mode, "manual", by, note, evidence, expected=None)
        return self.category_status(config, key), event

    def review(self, config: RolloutConfig) -> list[RolloutEvent]:
        """The automatic changes the config allows: promotion of cleared drafts, demotion
        of auto categories over their guardrail. Compare-and-set: another replica (or ops)
        changing the category first wins."""
        if not (config.auto_promote or config.auto_demote):
            return []
        events = []
        for status in self.status(config):
            move = _automatic(status, config)
            if move is None:
                continue
            target, reason, why = move
            try:
                event = self._write(status.category, target, status.mode, reason, "replica", why,
                                    status.evidence(), expected=status.mode)
            except StaleRolloutChange:
                continue
            if event is not None:
                events.append(event)
        return events

    # ---- internals -----------------------------------------------------------------

    def _write(
        self, category: str, to: Mode, current: Mode, reason: Reason, by: str, note: str | None,
        evidence: dict[str, Any], expected: Mode | None,
    ) -> RolloutEvent | None:
        event = self.book.change(
            category, to, initial=current, reason=reason, by=by, note=note, evidence=evidence,
            expected=expected,
        )
        if event is not None:
            self._on_change(event)
        return event

    def _ratings(self, category: str, mode: Mode, since: datetime, config: RolloutConfig) -> Ratings:
        if self._store is None:
            return Ratings()
        tags = {ROLLOUT_TAG: category, "mode": mode}
        return Ratings.of(self._store.ratings(tags, since, config.promotion_gate.match_threshold))

    def _window_start(self, config: RolloutConfig) -> datetime:
        return self._clock() - timedelta(days=config.promotion_gate.window_days)


def _step(mode: Mode, by: int) -> Mode:
    index = min(max(MODES.index(mode) + by, 0), len(MODES) - 1)
    return MODES[index]


def _automatic(status: CategoryStatus, config: RolloutConfig) -> tuple[Mode, Reason, str] | None:
    if config.auto_promote and status.mode == "draft" and status.promotion.cleared:
        return "auto", "auto_promote", status.promotion.why
    guardrail = status.guardrail
    if config.auto_demote and status.mode == "auto" and guardrail is not None and guardrail.breached:
        return "draft", "auto_demote", guardrail.why
    return None
