"""The admin API: every `/admin` route, mounted as one sub-app behind one guard.

    GET    /admin/config                        the live config in force, the last push it rejected
    GET    /admin/adapters                      adapter versions, domains, replicas' generations
    POST   /admin/adapters                      load {path, activate, force}
    POST   /admin/adapters/{domain}/activate    {version}
    POST   /admin/adapters/{domain}/rollback    {version?}
    POST   /admin/adapters/{domain}/candidate   {version?} (none: clear the slot)
    DELETE /admin/adapters/{domain}
    GET    /admin/router                        router versions (`router list`)
    POST   /admin/router                        register {path, candidate, activate}
    POST   /admin/router/activate|rollback|candidate   {version}
    GET    /admin/rollout                       rollout mode of each category
    POST   /admin/rollout/promote|demote        {category, to?, note?, force?}
    GET    /admin/rollout/events                ?category=

A group of routes is mounted only when its capability is on. Who may call: the configured
admin key, or an API key with the admin role; without either the admin API is off (403).
The guard runs once per request, before the handler, which is handed who called
(`admin-key` or `key:<name>`, for the record of a change). A capability's refusal becomes
its HTTP error in `gateway.errors.translated`, the translator the public API uses too.
"""

from __future__ import annotations

import asyncio
import hmac
from pathlib import Path
from typing import Awaitable, Callable, NamedTuple, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from adapters.fleet import AdapterChanges, ChangeResult
from gateway.auth import Authenticator, bearer
from gateway.bodies import parse_json, read_body, validated
from gateway.errors import AuthenticationError, GatewayError, InvalidRequest, PermissionDenied, translated
from gateway.live_config import LiveConfigState
from router.registry import RouterRegistry, RouterState
from router.versions import RouterVersions
from support.config import Mode, RolloutConfig
from support.rollout import Rollout
from support.rollout_modes import RolloutModes

B = TypeVar("B", bound=BaseModel)
# Admin bodies hold a path or a version: the limit only stops abuse, and stays fixed
# whatever the live limit for completion requests is.
MAX_BODY_BYTES = 1_000_000

Handler = Callable[[Request, str], Awaitable[Response]]  # (request, who called)


class AdminRoute(NamedTuple):
    path: str  # under /admin
    method: str
    handler: Handler


class AdminGroup(Protocol):
    """The admin routes of one capability."""

    def routes(self) -> list[AdminRoute]: ...


def admin_routes(guard: AdminGuard, *groups: AdminGroup) -> list[BaseRoute]:
    """The admin API as one mount: each handler behind the guard and the translator."""
    routes = [
        Route(r.path, _guarded(guard, r.handler), methods=[r.method]) for group in groups for r in group.routes()
    ]
    return [Mount("/admin", routes=routes)]


def _guarded(guard: AdminGuard, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        who = await guard.authorize(request)
        try:
            return await handler(request, who)
        except GatewayError:
            raise
        except Exception as exc:
            # Answered as a gateway error here: the app's catch-all re-raises after answering.
            error = translated(exc)
            if error is None:
                raise
            raise error from None

    return endpoint


class AdminGuard:
    """Who may call /admin/*: the configured admin key, or an API key with the admin role."""

    def __init__(self, api_key: SecretStr | None, auth: Authenticator | None = None) -> None:
        self._key = api_key
        self._auth = auth

    async def authorize(self, request: Request) -> str:
        """Who is calling (for the record of a change): `admin-key` or `key:<name>`."""
        keyed = self._auth is not None and self._auth.has_keys
        if self._key is None and not keyed:
            raise PermissionDenied(
                "The admin API is disabled: set GATEWAY_ADMIN__API_KEY (or create an admin key "
                "with `gateway keys create --admin`) to enable it.",
                code="admin_disabled",
            )
        token = bearer(request)
        if token is None:
            raise AuthenticationError("Admin endpoints need 'Authorization: Bearer <admin key>'.")
        if self._key is not None and hmac.compare_digest(token.encode(), self._key.get_secret_value().encode()):
            return "admin-key"
        record = await self._auth.identify(request) if keyed else None  # type: ignore[union-attr]
        if record is None:
            raise AuthenticationError("Incorrect admin key provided.")
        if record.role != "admin":
            raise PermissionDenied(f"Key '{record.name}' is not an admin key.")
        return f"key:{record.name}"


# ---- bodies --------------------------------------------------------------------------------


class VersionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str | None = None


class LoadBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="PEFT adapter directory with its manifest.json")
    activate: bool = False
    force: bool = Field(False, description="Register even if its own evaluation failed")


class RegisterBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="Router model directory (`router train --out`) on the ingress's machine")
    candidate: bool = Field(False, description="Also make it the candidate (start its canary)")
    activate: bool = Field(False, description="Also make it active (no canary)")


class RolloutBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: str = Field(min_length=1, max_length=200)
    to: Mode | None = Field(None, description="The mode; None = one phase up (promote) or down (demote)")
    note: str | None = Field(None, max_length=2000, description="Why, for the event")
    force: bool = Field(False, description="Promote to auto although the promotion gate is not cleared")


async def admin_body(request: Request, model: type[B], allow_empty: bool = False) -> B:
    # Checked as the OpenAI endpoints check theirs; no body at all is fine where every
    # field is optional (rollback, candidate).
    raw = await read_body(request, MAX_BODY_BYTES)
    if not raw.strip() and allow_empty:
        return model()
    return validated(model, parse_json(raw))


async def version_of(request: Request, required: bool) -> str | None:
    body = await admin_body(request, VersionBody, allow_empty=not required)
    if required and not body.version:
        raise InvalidRequest("Missing 'version'.", param="version")
    return body.version


# ---- /admin/config -------------------------------------------------------------------------


class ConfigAdmin:
    """The live config in force on the answering replica and the last push it rejected
    (with the reason), so a `serve deploy` that did not take is visible."""

    def __init__(self, state: LiveConfigState) -> None:
        self._state = state

    def routes(self) -> list[AdminRoute]:
        return [AdminRoute("/config", "GET", self.show)]

    async def show(self, request: Request, who: str) -> Response:
        return JSONResponse(self._state.view())


# ---- /admin/adapters -----------------------------------------------------------------------


class AdapterAdmin:
    """Adapter changes (`adapters/fleet.py`): 200 once every small-tier replica applied
    the change, 202 when the wait ran out first; the answer carries the swap time."""

    def __init__(self, changes: AdapterChanges) -> None:
        self._changes = changes

    def routes(self) -> list[AdminRoute]:
        return [
            AdminRoute("/adapters", "GET", self.list),
            AdminRoute("/adapters", "POST", self.load),
            AdminRoute("/adapters/{domain}/activate", "POST", self.activate),
            AdminRoute("/adapters/{domain}/rollback", "POST", self.rollback),
            AdminRoute("/adapters/{domain}/candidate", "POST", self.candidate),
            AdminRoute("/adapters/{domain}", "DELETE", self.unload),
        ]

    async def list(self, request: Request, who: str) -> Response:
        registry = self._changes.registry
        state = await asyncio.to_thread(registry.state)
        versions = await asyncio.to_thread(registry.versions)
        reports = await self._changes.fleet.reports()
        return JSONResponse({
            "generation": state.generation,
            "domains": {d: {"active": s.active, "candidate": s.candidate} for d, s in state.domains.items()},
            "versions": [m.model_dump(mode="json", exclude={"centroids"}) for m in versions],
            "replicas": {name: r.model_dump(mode="json") for name, r in reports.items()},
        })

    async def load(self, request: Request, who: str) -> Response:
        body = await admin_body(request, LoadBody)
        return await self._answer(self._changes.load(body.path, body.force, body.activate))

    async def activate(self, request: Request, who: str) -> Response:
        domain, version = request.path_params["domain"], await version_of(request, required=True)
        return await self._answer(self._changes.activate(domain, str(version)))

    async def rollback(self, request: Request, who: str) -> Response:
        domain, version = request.path_params["domain"], await version_of(request, required=False)
        return await self._answer(self._changes.rollback(domain, version))

    async def candidate(self, request: Request, who: str) -> Response:
        domain, version = request.path_params["domain"], await version_of(request, required=False)
        return await self._answer(self._changes.set_candidate(domain, version))

    async def unload(self, request: Request, who: str) -> Response:
        return await self._answer(self._changes.unload(request.path_params["domain"]))

    async def _answer(self, change: Awaitable[ChangeResult]) -> Response:
        result = await change
        return JSONResponse(result.model_dump(mode="json"), status_code=200 if result.converged else 202)


# ---- /admin/router -------------------------------------------------------------------------


class RouterAdmin:
    """The router version registry, mirroring `router register | list | activate | rollback |
    candidate`. A change is written to the registry; every ingress replica (this one at
    once) picks it up on its next poll, so the answer says which version this one serves.
    A step router's registry is served the same way under `/router/steps/<tier>` (`--step`)."""

    def __init__(self, registry: RouterRegistry, versions: RouterVersions, path: str = "/router") -> None:
        self._registry = registry
        self._versions = versions
        self._path = path

    def routes(self) -> list[AdminRoute]:
        p = self._path
        return [
            AdminRoute(p, "GET", self.list),
            AdminRoute(p, "POST", self.register),
            AdminRoute(f"{p}/activate", "POST", self.activate),
            AdminRoute(f"{p}/rollback", "POST", self.rollback),
            AdminRoute(f"{p}/candidate", "POST", self.candidate),
        ]

    async def list(self, request: Request, who: str) -> Response:
        state = await asyncio.to_thread(self._registry.state)
        versions = await asyncio.to_thread(self._registry.versions)
        return JSONResponse({
            **self._summary(state),
            "versions": [v.model_dump(mode="json") for v in versions],
            "history": [h.model_dump(mode="json") for h in state.history[-20:]],
        })

    async def register(self, request: Request, who: str) -> Response:
        body = await admin_body(request, RegisterBody)

        def change() -> RouterState:
            entry = self._registry.register(Path(body.path))
            if body.candidate:
                self._registry.set_candidate(entry.version, reason="admin api")
            if body.activate:
                self._registry.activate(entry.version, reason="admin api")
            return self._registry.state()

        return await self._change(change)

    async def activate(self, request: Request, who: str) -> Response:
        version = str(await version_of(request, required=True))
        return await self._change(lambda: self._registry.activate(version, reason="admin api"))

    async def rollback(self, request: Request, who: str) -> Response:
        version = await version_of(request, required=False)
        return await self._change(lambda: self._registry.rollback(version))

    async def candidate(self, request: Request, who: str) -> Response:
        version = await version_of(request, required=False)  # none: clear the slot
        return await self._change(lambda: self._registry.set_candidate(version, reason="admin api"))

    async def _change(self, change: Callable[[], RouterState]) -> Response:
        state = await asyncio.to_thread(change)
        await self._versions.step()  # this replica at once; the others within a poll
        return JSONResponse(self._summary(state))

    def _summary(self, state: RouterState) -> dict[str, object]:
        active, candidate = self._versions.active, self._versions.candidate
        return {
            "generation": state.generation, "active": state.active, "candidate": state.candidate,
            "serving": active.version if active else None,
            "scoring_candidate": candidate.version if candidate else None,
        }


# ---- /admin/rollout ------------------------------------------------------------------------


class RolloutAdmin:
    """The per-category rollout, mirroring `gateway rollout status | promote | demote |
    events`. A change is written to the rollout state file; every ingress replica (this
    one at once) serves the new mode from its next poll."""

    def __init__(self, rollout: Rollout, modes: RolloutModes, config: Callable[[], RolloutConfig]) -> None:
        self._rollout = rollout
        self._modes = modes
        self._config = config

    def routes(self) -> list[AdminRoute]:
        return [
            AdminRoute("/rollout", "GET", self.status),
            AdminRoute("/rollout/promote", "POST", self.promote),
            AdminRoute("/rollout/demote", "POST", self.demote),
            AdminRoute("/rollout/events", "GET", self.events),
        ]

    async def status(self, request: Request, who: str) -> Response:
        config = self._config()
        statuses = await asyncio.to_thread(self._rollout.status, config)
        return JSONResponse({
            "categories": [s.model_dump(mode="json") for s in statuses],
            "default_mode": config.default_mode,
            "promotion_gate": config.promotion_gate.model_dump(mode="json"),
        })

    async def promote(self, request: Request, who: str) -> Response:
        return await self._change(request, who, promote=True)

    async def demote(self, request: Request, who: str) -> Response:
        return await self._change(request, who, promote=False)

    async def events(self, request: Request, who: str) -> Response:
        category = request.query_params.get("category")
        events = await asyncio.to_thread(self._rollout.book.events, category)
        return JSONResponse({"events": [e.model_dump(mode="json") for e in events]})

    async def _change(self, request: Request, who: str, promote: bool) -> Response:
        body, config = await admin_body(request, RolloutBody), self._config()
        try:
            status, event = await asyncio.to_thread(
                self._rollout.change, config, body.category, body.to, by=who, promote=promote, note=body.note,
                force=body.force,
            )
        except ValueError as exc:  # the category itself was refused (e.g. blank once trimmed)
            raise InvalidRequest(str(exc), param="category") from None
        await self._modes.step()  # this replica at once; the others within a poll
        return JSONResponse({
            "changed": event is not None, "status": status.model_dump(mode="json"),
            "event": event.model_dump(mode="json") if event else None,
        })

