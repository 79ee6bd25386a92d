"""Who may read the gateway's insides: /metrics, and /ready's detail (each tier's load,
its probe's error). The configured admin key, an admin or metrics key, or anyone on an open
gateway bound to loopback (the machine's own user). /health says only "ok", to anyone.
"""

from __future__ import annotations

import hmac

from pydantic import SecretStr
from starlette.requests import Request

from gateway.auth import Authenticator, bearer
from gateway.errors import AuthenticationError, PermissionDenied

ROLES = ("admin", "metrics")


class Observers:
    def __init__(self, auth: Authenticator, admin_key: SecretStr | None = None) -> None:
        self._auth = auth
        self._admin_key = admin_key

    async def allowed(self, request: Request) -> bool:
        """May this caller see the insides; never refuses."""
        try:
            await self.require(request)
        except (AuthenticationError, PermissionDenied):
            return False
        return True

    async def require(self, request: Request) -> None:
        """401 without a (valid) key, 403 for a key of another role."""
        if self._auth.access.trusts_anonymous:
            return
        token = bearer(request)
        if token is None:
            raise AuthenticationError(
                "This endpoint needs 'Authorization: Bearer <key>' with an admin or metrics key "
                "(`gateway keys create --role metrics`)."
            )
        admin = self._admin_key
        if admin is not None and hmac.compare_digest(token.encode(), admin.get_secret_value().encode()):
            return
        record = await self._auth.identify(request)
        if record is None:
            raise AuthenticationError("Incorrect API key provided.")
        if record.role not in ROLES:
            raise PermissionDenied(f"Key '{record.name}' is neither an admin nor a metrics key.")
