"""The rollout's evidence: feedback on journaled answers, read through a protocol.

The feedback journal is the shadow store today (`shadow.journal.Journal` satisfies
`RatingsJournal` structurally); support does not import it, so either can change alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Mapping, Protocol

from pydantic import BaseModel, Field, computed_field


class RatingCounts(Protocol):
    """What a journal counts for a set of answers (its own `Ratings` model, say)."""

    @property
    def n(self) -> int: ...
    @property
    def negative(self) -> int: ...
    @property
    def with_sent(self) -> int: ...
    @property
    def matched(self) -> int: ...
    @property
    def mean_match(self) -> float | None: ...


class RatingsJournal(Protocol):
    """The two reads the rollout makes of the feedback journal."""

    def ratings(
        self, tags: Mapping[str, str], since: datetime | None = None, match_at: float = 1.0,
    ) -> RatingCounts:
        """Feedback on the answers journaled with these tags, served since `since`: each
        rated answer once (a gate counts answers, not ratings)."""
        ...

    def rated_tag_values(self, key: str, since: datetime | None = None, limit: int | None = None) -> list[str]:
        """The values of tag `key` among rated answers served since `since`, the most rated
        first, at most `limit`."""
        ...


class Ratings(BaseModel):
    """Feedback on a set of journaled answers (e.g. one category's drafts)."""

    n: int = Field(0, description="Rated answers (each once, by its newest rating)")
    negative: int = Field(0, description="Rated answers whose rating is -1")
    with_sent: int = Field(0, description="Ratings that came with the text actually sent (a match score)")
    matched: int = Field(0, description="Of those, matches at or above the match threshold")
    mean_match: float | None = None

    @classmethod
    def of(cls, counts: RatingCounts) -> Ratings:
        return cls(
            n=counts.n, negative=counts.negative, with_sent=counts.with_sent, matched=counts.matched,
            mean_match=counts.mean_match,
        )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def negative_share(self) -> float | None:
        return self.negative / self.n if self.n else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def match_rate(self) -> float | None:
        return self.matched / self.with_sent if self.with_sent else None
