"""`/admin/rollout`: the per-category rollout over HTTP (admin key), mirroring
`gateway rollout status | promote | demote | events`.

A change is written to the rollout state file; every ingress replica (this one at once)
serves the new mode from its next poll.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.admin import admin_body
from gateway.admin_auth import AdminGuard
from gateway.errors import Conflict, InvalidRequest
from gateway.rollout import CategoryStatus, GateNotCleared, Rollout
from gateway.rollout_modes import RolloutModes
from gateway.rollout_state import RolloutEvent, StaleRolloutChange
from gateway.support_config import Mode, RolloutConfig

T = TypeVar("T")


class ChangeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: str = Field(min_length=1, max_length=200)
    to: Mode | None = Field(None, description="The mode; None = one phase up (promote) or down (demote)")
    note: str | None = Field(None, max_length=2000, description="Why, for the event")
    force: bool = Field(False, description="Promote to auto although the promotion gate is not cleared")


class RolloutAdmin:
    def __init__(
        self, rollout: Rollout, modes: RolloutModes, config: Callable[[], RolloutConfig], guard: AdminGuard,
    ) -> None:
        self._rollout = rollout
        self._modes = modes
        self._config = config
        self._guard = guard

    def routes(self) -> list[Route]:
        return [
            Route("/admin/rollout", self.status, methods=["GET"]),
            Route("/admin/rollout/promote", self.promote, methods=["POST"]),
            Route("/admin/rollout/demote", self.demote, methods=["POST"]),
            Route("/admin/rollout/events", self.events, methods=["GET"]),
        ]

    async def status(self, request: Request) -> Response:
        await self._guard.authorize(request)
        config = self._config()
        statuses = await asyncio.to_thread(self._rollout.status, config)
        return JSONResponse({
            "categories": [s.model_dump(mode="json") for s in statuses],
            "default_mode": config.default_mode,
            "promotion_gate": config.promotion_gate.model_dump(mode="json"),
        })

    async def promote(self, request: Request) -> Response:
        return await self._change(request, promote=True)

    async def demote(self, request: Request) -> Response:
        return await self._change(request, promote=False)

    async def events(self, request: Request) -> Response:
        await self._guard.authorize(request)
        category = request.query_params.get("category")
        events = await asyncio.to_thread(self._rollout.book.events, category)
        return JSONResponse({"events": [e.model_dump(mode="json") for e in events]})

    async def _change(self, request: Request, promote: bool) -> Response:
        who = await self._guard.authorize(request)
        body = await admin_body(request, ChangeBody)
        config = self._config()
        status, event = await _translated(lambda: asyncio.to_thread(
            self._rollout.change, config, body.category, body.to, by=who, promote=promote, note=body.note,
            force=body.force,
        ))
        await self._modes.step()  # this replica at once; the others within a poll
        return JSONResponse(_changed(status, event))


async def _translated(call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except GateNotCleared as exc:
        raise Conflict(exc.message, code="gate_not_cleared") from None
    except StaleRolloutChange as exc:
        raise Conflict(exc.message) from None
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="category") from None


def _changed(status: CategoryStatus, event: RolloutEvent | None) -> dict[str, object]:
    return {
        "changed": event is not None, "status": status.model_dump(mode="json"),
        "event": event.model_dump(mode="json") if event else None,
    }
