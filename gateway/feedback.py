"""`POST /v1/feedback`: a rating of a journaled answer, optionally with the text actually
sent (scored against the draft)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.auth import Authenticator
from gateway.errors import NotFound
from gateway.bodies import read_json, validation_error
from gateway.labels import CategoryLabels
from gateway.metrics import GatewayMetrics
from shadow.agreement import Agreement
from shadow.service import ShadowService
from shadow.journal import FeedbackRecord

logger = logging.getLogger(__name__)

MAX_FEEDBACK_TEXT = 100_000


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=200, description="x-request-id, or the response id")
    rating: Literal[1, -1] = Field(description="+1 helpful, -1 not")
    sent_text: str | None = Field(None, max_length=MAX_FEEDBACK_TEXT, description="What was actually sent")
    comment: str | None = Field(None, max_length=10_000)

    def plain_id(self) -> str:
        """Accept the response `id` too: chatcmpl-<request id> / cmpl-<request id>."""
        for prefix in ("chatcmpl-", "cmpl-"):
            if self.request_id.startswith(prefix):
                return self.request_id.removeprefix(prefix)
        return self.request_id


class Feedback:
    """`POST /v1/feedback`: a rating of a journaled answer."""

    def __init__(
        self,
        service: ShadowService,
        agreement: Agreement,
        metrics: GatewayMetrics,
        auth: Authenticator,
        categories: CategoryLabels,
    ) -> None:
        self.service = service
        self._agreement = agreement
        self._metrics = metrics
        self._auth = auth
        self._categories = categories

    # ---- feedback -----------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [Route("/v1/feedback", self.feedback, methods=["POST"])]

    async def feedback(self, request: Request) -> Response:
        await self._auth.key(request)
        payload = await read_json(request, MAX_FEEDBACK_TEXT * 2)
        try:
            body = FeedbackRequest.model_validate(payload)
        except ValidationError as exc:
            raise validation_error(exc) from None
        store = self.service.store
        record = await asyncio.to_thread(store.request, body.plain_id())
        if record is None:
            raise NotFound(
                f"No answer with request id '{body.request_id}' is on record (answers are kept "
                "when the journal is on; feedback can only rate those).", param="request_id",
                code="request_not_found",
            )
        match = None
        if body.sent_text is not None:
            match = await asyncio.to_thread(self._agreement.score, record.draft, body.sent_text)
        saved = FeedbackRecord(
            request_id=record.request_id, rating=body.rating, sent_text=body.sent_text,
            comment=body.comment, match=match,
        )
        await asyncio.to_thread(store.add_feedback, saved)
        self._observe(record.tags, body.rating, match)
        return JSONResponse(_feedback_body(saved, record.target))

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
