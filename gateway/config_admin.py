"""`GET /admin/config`: the live config in force on the answering replica and the last
push it rejected (with the reason), so a `serve deploy` that did not take is visible."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.admin_auth import AdminGuard
from gateway.live_config import LiveConfigState


class ConfigAdmin:
    def __init__(self, state: LiveConfigState, guard: AdminGuard) -> None:
        self._state = state
        self._guard = guard

    def routes(self) -> list[Route]:
        return [Route("/admin/config", self.show, methods=["GET"])]

    async def show(self, request: Request) -> Response:
        await self._guard.authorize(request)
        return JSONResponse(self._state.view())
