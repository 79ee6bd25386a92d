"""What the answer flags keep: a row per flag raised on a sent answer.

`flags/` opens no other package's store: the shadow store (`shadow.journal.Journal`)
satisfies `FlagStore` as it is, and keeps `FlagRecord` rows in its `flags` table.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Protocol

from pydantic import BaseModel, Field, field_validator

MAX_CATEGORY = 64  # a client names the category: what is kept of it is bounded


def _now() -> datetime:
    return datetime.now(timezone.utc)


class FlagRecord(BaseModel):
    """A served answer an evaluator flagged for follow-up (promise, tone, pii, unfaithful)."""

    request_id: str
    created_at: datetime = Field(default_factory=_now)
    category: str = ""
    tier: str = ""
    kind: str
    detail: str
    score: float | None = None

    @field_validator("category")
    @classmethod
    def _bounded(cls, category: str) -> str:
        return category[:MAX_CATEGORY]


class FlagStore(Protocol):
    def add_flags(self, records: Sequence[FlagRecord]) -> None: ...
