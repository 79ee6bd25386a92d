"""What the router canary keeps and reads: its scored requests, the mirrored pairs that
grade them, and a journal of its verdicts.

`router/` opens no other package's store: the shadow store (`shadow.journal.Journal`)
satisfies `CanaryStore` as it is, and keeps `RouterScore` rows in its own table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Protocol

from pydantic import BaseModel, Field

from router.flywheel import LabelledPair


def _now() -> datetime:
    return datetime.now(timezone.utc)


class RouterScore(BaseModel):
    """One live `auto` request scored by the active router version and the candidate."""

    request_id: str
    created_at: datetime = Field(default_factory=_now)
    prompt_key: str = Field(description="Digest of the routed text: joins graded outcomes")
    category: str | None = None
    active_version: str
    candidate_version: str
    active_tier: str
    candidate_tier: str
    active_score: float | None
    candidate_score: float


class MirroredPair(LabelledPair, Protocol):
    """A shadow pair of one live request (large answered, small mirrored), by request id."""

    @property
    def request_id(self) -> str: ...


class CanaryStore(Protocol):
    def add_router_score(self, record: RouterScore) -> None: ...

    def router_scores(self, active: str, candidate: str) -> Sequence[RouterScore]:
        """The newest requests both versions scored (the canary's sample)."""
        ...

    def pairs_of(self, request_ids: Sequence[str]) -> Sequence[MirroredPair]: ...

    def record_event(self, kind: str, subject: str, detail: Mapping[str, Any]) -> None:
        """Journal a decision taken automatically (a promotion, a rejection)."""
        ...
