"""Pure ASGI middleware: a request id for every request, echoed in `x-request-id`; the
trusted-host check; Ray Serve's control headers refused; the detail headers kept for the
callers allowed to see them.

The order is set in `gateway.http.GatewayApp.build` (and says why there).
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import InvalidRequest

HEADER = "x-request-id"
# A client-supplied id is kept only if it is short and safe to log and echo.
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class RequestIdMiddleware:
    """`echo=False` behind a proxy that already echoes the id (Ray Serve's does)."""

    def __init__(self, app: ASGIApp, echo: bool = True) -> None:
        self.app = app
        self.echo = echo

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _incoming_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if self.echo and message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = rid
            await send(message)

        await self.app(scope, receive, send_with_id)


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == HEADER.encode():
            candidate = value.decode("latin-1")
            return candidate if _SAFE_ID.fullmatch(candidate) else None  # `$` would admit a final "\n"
    return None


def request_id(request: Request) -> str:
    return request.scope.get("state", {}).get("request_id") or uuid.uuid4().hex


# ---- trusted hosts ----------------------------------------------------------------------


class TrustedHostMiddleware:
    """Answers only requests whose Host header names this gateway (400 otherwise).

    A web page the user visits can make its own name resolve to 127.0.0.1 (DNS rebinding)
    and then POST to a gateway on loopback as a same-origin page: the browser sends the
    page's name as Host, which is not one of ours. `allowed` None: any host (a public bind
    is reached by names only the operator knows; a proxy in front checks them)."""

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...] | None) -> None:
        self.app = app
        self._allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._allowed is None or scope["type"] != "http" or host_allowed(_host(scope), self._allowed):
            await self.app(scope, receive, send)
            return
        error = InvalidRequest("Invalid Host header: this gateway does not answer that name.", code="invalid_host")
        await JSONResponse(error.body(), status_code=error.status)(scope, receive, send)


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    for pattern in allowed:
        if host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return True
    return False


def _host(scope: Scope) -> str:
    """The Host header's name, lower case, without its port or IPv6 brackets."""
    for name, value in scope.get("headers", []):
        if name == b"host":
            text = value.decode("latin-1").strip().lower()
            if text.startswith("["):
                return text[1:].partition("]")[0]
            return text.rpartition(":")[0] if text.count(":") == 1 else text
    return ""


# ---- Ray Serve's control headers --------------------------------------------------------

# Ray Serve 2.60 reads these from the client's request in its proxy (and, under HAProxy, in
# the replica's own HTTP server) before this app runs: `x-request-disconnect-disabled: ?1`
# stops it cancelling the call when the client goes away (a generation then runs to its
# end for nobody), `x-request-timeout-seconds` replaces or (<= 0) lifts the configured
# request timeout. Removing them here would be too late, and Ray has no setting to ignore
# them; refusing the request before any work is not. Nothing in Ray sets them itself.
RAY_CONTROL_HEADERS = (b"x-request-disconnect-disabled", b"x-request-timeout-seconds")


class RayControlHeadersMiddleware:
    """400 for a request carrying one of Ray Serve's control headers (a proxy in front that
    strips them serves such clients normally: docs/operations.md)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, _ in scope.get("headers", []):
                if name.lower() in RAY_CONTROL_HEADERS:
                    error = InvalidRequest(
                        f"The header '{name.decode('latin-1').lower()}' controls the serving layer and is not "
                        "accepted from clients.", param=name.decode("latin-1").lower(), code="reserved_header",
                    )
                    await JSONResponse(error.body(), status_code=error.status)(scope, receive, send)
                    return
        await self.app(scope, receive, send)


# ---- detail headers -----------------------------------------------------------------------

# What every caller is told of where its answer went: the tier (the body's `model` names the
# served model). The other x-gateway-* headers describe the gateway's insides (route scores
# and thresholds, queue depth and expected wait, router and adapter versions, a category's
# rollout mode, the gate's verdict, KB sources and chunk ids) and go to admin keys and an
# open loopback gateway's user, or to everyone with `auth.detail_headers`. An allowlist: a
# header added later is detail until someone decides otherwise.
PUBLIC_HEADERS = frozenset({b"x-gateway-tier"})
DETAIL = "gateway.detail"  # set in the scope's state by the authenticator: this caller sees detail


def mark_detail(scope: Scope, allowed: bool) -> None:
    scope.setdefault("state", {})[DETAIL] = allowed


class DetailHeadersMiddleware:
    """Drops the detail headers from a response unless its caller was marked (`mark_detail`):
    a response whose caller was never identified gets the public ones only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_public(message: Message) -> None:
            if message["type"] == "http.response.start" and not scope.get("state", {}).get(DETAIL):
                message["headers"] = [(k, v) for k, v in message.get("headers", []) if not _is_detail(k)]
            await send(message)

        await self.app(scope, receive, send_public)


def _is_detail(name: bytes) -> bool:
    name = name.lower()
    return name.startswith(b"x-gateway-") and name not in PUBLIC_HEADERS
