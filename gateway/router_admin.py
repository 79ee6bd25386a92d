"""`/admin/router`: the router version registry over HTTP (admin key), mirroring
`router register | list | activate | rollback | candidate`.

A change is written to the registry; every ingress replica (this one included) picks it
up on its next poll, so the answer says which version this replica serves right now.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Callable

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.admin import VersionBody, admin_body
from gateway.admin_auth import AdminGuard
from gateway.errors import Conflict, GatewayError, InvalidRequest, NotFound
from gateway.router_versions import RouterVersions
from router.errors import RollbackUnavailable, RouterVersionError, StaleChange, VersionNotFound, VersionRefused
from router.registry import RouterRegistry, RouterState


class RegisterBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="Router model directory (`router train --out`) on the ingress's machine")
    candidate: bool = Field(False, description="Also make it the candidate (start its canary)")
    activate: bool = Field(False, description="Also make it active (no canary)")


def router_error_to_gateway(exc: RouterVersionError) -> GatewayError:
    if isinstance(exc, VersionNotFound):
        return NotFound(exc.message)
    if isinstance(exc, VersionRefused):
        return InvalidRequest(exc.message, param="path")
    if isinstance(exc, (RollbackUnavailable, StaleChange)):
        return Conflict(exc.message)
    return GatewayError(exc.message)


class RouterAdmin:
    def __init__(self, registry: RouterRegistry, versions: RouterVersions, guard: AdminGuard) -> None:
        self._registry = registry
        self._versions = versions
        self._guard = guard

    def routes(self) -> list[Route]:
        return [
            Route("/admin/router", self.list, methods=["GET"]),
            Route("/admin/router", self.register, methods=["POST"]),
            Route("/admin/router/activate", self.activate, methods=["POST"]),
            Route("/admin/router/rollback", self.rollback, methods=["POST"]),
            Route("/admin/router/candidate", self.candidate, methods=["POST"]),
        ]

    async def list(self, request: Request) -> Response:
        await self._guard.authorize(request)
        state = await asyncio.to_thread(self._registry.state)
        versions = await asyncio.to_thread(self._registry.versions)
        return JSONResponse({
            **self._summary(state),
            "versions": [v.model_dump(mode="json") for v in versions],
            "history": [h.model_dump(mode="json") for h in state.history[-20:]],
        })

    async def register(self, request: Request) -> Response:
        await self._guard.authorize(request)
        body = await admin_body(request, RegisterBody)

        def change() -> RouterState:
            entry = self._registry.register(Path(body.path))
            if body.candidate:
                self._registry.set_candidate(entry.version, reason="admin api")
            if body.activate:
                self._registry.activate(entry.version, reason="admin api")
            return self._registry.state()

        return await self._change(change)

    async def activate(self, request: Request) -> Response:
        await self._guard.authorize(request)
        version = await self._version(request, required=True)
        return await self._change(lambda: self._registry.activate(str(version), reason="admin api"))

    async def rollback(self, request: Request) -> Response:
        await self._guard.authorize(request)
        version = await self._version(request, required=False)
        return await self._change(lambda: self._registry.rollback(version))

    async def candidate(self, request: Request) -> Response:
        await self._guard.authorize(request)
        version = await self._version(request, required=False)  # none: clear the slot
        return await self._change(lambda: self._registry.set_candidate(version, reason="admin api"))

    async def _change(self, change: Callable[[], RouterState]) -> Response:
        try:
            state = await asyncio.to_thread(change)
        except RouterVersionError as exc:
            raise router_error_to_gateway(exc) from None
        await self._versions.step()  # this replica at once; the others within a poll
        return JSONResponse(self._summary(state))

    def _summary(self, state: RouterState) -> dict[str, object]:
        active, candidate = self._versions.active, self._versions.candidate
        return {
            "generation": state.generation, "active": state.active, "candidate": state.candidate,
            "serving": active.version if active else None,
            "scoring_candidate": candidate.version if candidate else None,
        }

    async def _version(self, request: Request, required: bool) -> str | None:
        body = await admin_body(request, VersionBody, allow_empty=not required)
        if required and not body.version:
            raise InvalidRequest("Missing 'version'.", param="version")
        return body.version
