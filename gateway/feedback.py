"""`POST /v1/feedback`: a rating of a journaled answer, optionally with the text actually
sent (scored against the draft).

Ratings steer adapter canaries and the support rollout, so who may rate is narrow:
- only the API key that made the request (the journal records it), or an admin-role key;
  on an open gateway, anonymous callers rate the answers served anonymously. Any other
  caller gets the very 404 of an id that was never served: a request id's existence is
  nobody else's business;
- once per (answer, key): a second rating is a 409 `already_rated`, nothing changes;
- at most `shadow.feedback_per_minute` calls per key and replica (429 with Retry-After),
  counted before anything is looked up.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.auth import Authenticator, LocalRateLimiter, RateLimiter
from gateway.bodies import read_json, validation_error
from gateway.errors import Conflict, NotFound, RateLimited
from gateway.keys import KeyRecord
from gateway.labels import CategoryLabels
from gateway.metrics import GatewayMetrics
from shadow.agreement import Agreement
from shadow.journal import AlreadyRated, FeedbackRecord, RequestRecord
from shadow.privacy import kept_optional, redact
from shadow.service import ShadowService

logger = logging.getLogger(__name__)

MAX_FEEDBACK_TEXT = 100_000
OPEN_RATER = "(anonymous)"  # the one rate-limit bucket of an open gateway's anonymous callers
RESPONSE_PREFIXES = ("chatcmpl-", "cmpl-", "resp_")


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(
        min_length=1, max_length=200, description="The response id (chatcmpl-…, cmpl-…, resp_…) or the id in it"
    )
    rating: Literal[1, -1] = Field(description="+1 helpful, -1 not")
    sent_text: str | None = Field(None, max_length=MAX_FEEDBACK_TEXT, description="What was actually sent")
    comment: str | None = Field(None, max_length=10_000)

    def plain_id(self) -> str:
        """The gateway's request id: the response id carries it after its prefix."""
        for prefix in RESPONSE_PREFIXES:
            if self.request_id.startswith(prefix):
                return self.request_id.removeprefix(prefix)
        return self.request_id


def may_rate(key: KeyRecord | None, record: RequestRecord) -> bool:
    """The key that asked, or an admin key; an anonymous caller, what was served anonymously."""
    if key is None:
        return record.key_id is None
    return key.id == record.key_id or key.role == "admin"


class Feedback:
    """`POST /v1/feedback`: a rating of a journaled answer."""

    def __init__(
        self,
        service: ShadowService,
        agreement: Agreement,
        metrics: GatewayMetrics,
        auth: Authenticator,
        categories: CategoryLabels,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.service = service
        self._agreement = agreement
        self._metrics = metrics
        self._auth = auth
        self._categories = categories
        # Per replica unless a shared limiter is given: the budget bounds a flood, the
        # ownership and once-per-key rules are what keep ratings honest.
        self._limiter = limiter or LocalRateLimiter()

    # ---- feedback -----------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [Route("/v1/feedback", self.feedback, methods=["POST"])]

    async def feedback(self, request: Request) -> Response:
        key = await self._auth.key(request)
        await self._admit(key)
        payload = await read_json(request, MAX_FEEDBACK_TEXT * 2)
        try:
            body = FeedbackRequest.model_validate(payload)
        except ValidationError as exc:
            raise validation_error(exc) from None
        store = self.service.store
        record = await asyncio.to_thread(store.request, body.plain_id())
        if record is None or not may_rate(key, record):
            raise NotFound(
                f"No answer with request id '{body.request_id}' is on record for this key (answers "
                "are kept when the journal is on; a key can rate only the answers it asked for).",
                param="request_id", code="request_not_found",
            )
        saved = await asyncio.to_thread(self._record, record, body, key)
        try:
            await asyncio.to_thread(store.add_feedback, saved)
        except AlreadyRated:
            raise Conflict(
                f"The answer '{body.request_id}' is rated by this key already; a rating is not changed.",
                param="request_id", code="already_rated",
            ) from None
        self._observe(record.tags, body.rating, saved.match)
        return JSONResponse(_feedback_body(saved, record.target))

    async def _admit(self, key: KeyRecord | None) -> None:
        limit = self.service.config.feedback_per_minute  # live: read per call
        admission = await self._limiter.admit(f"feedback:{key.id if key else OPEN_RATER}", limit, None)
        if not admission.allowed:
            raise RateLimited(
                f"Rate limit reached for feedback ({limit} per minute). "
                f"Retry after {admission.retry_after_s:.0f}s.",
                retry_after_s=admission.retry_after_s, code="rate_limit_feedback",
            )

    def _record(self, record: RequestRecord, body: FeedbackRequest, key: KeyRecord | None) -> FeedbackRecord:
        """The rating as stored: the texts as the journal's policy keeps them; the match is
        scored on the redacted draft and sent text, so it means the same under every policy."""
        policy = self.service.config.journal.policy(record.tags)
        match = None
        if body.sent_text is not None and record.draft:
            match = self._agreement.score(redact(record.draft), redact(body.sent_text))
        return FeedbackRecord(
            request_id=record.request_id, rating=body.rating, sent_text=kept_optional(body.sent_text, policy),
            comment=kept_optional(body.comment, policy), match=match, key_id=key.id if key else None,
        )

    def _observe(self, tags: dict[str, str], rating: int, match: float | None) -> None:
        tier, adapter = tags.get("tier", ""), tags.get("version", "")
        category = self._categories.label(tags.get("category"))  # the client's: bounded first
        self._metrics.shadow.feedback.labels(tier, adapter, category, str(rating)).inc()
        if match is not None:
            self._metrics.shadow.feedback_match.labels(tier, adapter, category).observe(match)


def _feedback_body(record: FeedbackRecord, target: str) -> dict[str, Any]:
    return {
        "object": "feedback", "request_id": record.request_id, "rating": record.rating,
        "match": record.match, "answered_by": target, "created_at": record.created_at.isoformat(),
    }
