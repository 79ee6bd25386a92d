"""Who may call /admin/*: the configured admin key, or an API key with the admin role."""

from __future__ import annotations

import hmac

from pydantic import SecretStr
from starlette.requests import Request

from gateway.auth import Authenticator, bearer
from gateway.errors import AuthenticationError, PermissionDenied


class AdminGuard:
    def __init__(self, api_key: SecretStr | None, auth: Authenticator | None = None) -> None:
        self._key = api_key
        self._auth = auth

    async def authorize(self, request: Request) -> str:
        """Who is calling (for the record of a change): `admin-key` or `key:<name>`."""
        keyed = self._auth is not None and not await self._auth.is_open()
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
        record = await self._auth.key(request) if keyed else None  # type: ignore[union-attr]
        if record is None:
            raise AuthenticationError("Incorrect admin key provided.")
        if record.role != "admin":
            raise PermissionDenied(f"Key '{record.name}' is not an admin key.")
        return f"key:{record.name}"
