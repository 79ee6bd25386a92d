"""Gateway exceptions, each with the HTTP status and OpenAI error type it maps to.

    GatewayError (500, api_error)
    ├── InvalidRequest (400, invalid_request_error)      malformed JSON, schema, unsupported
    │   └── ContextLengthError (400, code context_length_exceeded)
    ├── AuthenticationError (401, authentication_error)  missing or wrong API key
    ├── PermissionDenied (403, permission_error)          key valid, action not allowed / disabled
    ├── ModelNotFound (404, invalid_request_error, code model_not_found)
    │   └── AdapterNotFoundError (code adapter_not_found)
    ├── NotFound (404, invalid_request_error)            no such record (an unknown request id)
    ├── Conflict (409, invalid_request_error)            state forbids it (nothing to roll back to)
    ├── RateLimited (429, rate_limit_error)              per-key requests/tokens per minute; Retry-After
    ├── PayloadTooLarge (413, invalid_request_error)
    ├── UnsupportedMediaType (415, invalid_request_error)
    ├── EngineFailure (500, api_error)                   the engine raised while serving
    └── ServiceUnavailable (503, service_unavailable)    a tier is down or not ready; Retry-After
                                                          when a remote tier's upstream gave one

Only `gateway.http` turns these into responses; everything below raises. A capability
raises its own exceptions, and `translated` says what each one answers, in this one place:

    adapters.errors.AdapterNotServed      404 adapter_not_found, param model (a pinned `small:<domain>`)
    adapters.errors.AdapterNotFound       404 adapter_not_found
    adapters.errors.RollbackUnavailable   409 rollback_unavailable
    adapters.errors.ProbeFailed           400 invalid_adapter (refused) / 503 (unreachable) / 500
    adapters.errors.AdapterError (other)  400 invalid_adapter, incompatible_adapter, evaluation_failed
    router.errors.InvalidVersion          400 invalid_version, param version
    router.errors.VersionNotFound         404 not_found
    router.errors.VersionRefused          400 param path
    router.errors.RollbackUnavailable,
      StaleChange                         409 conflict
    support.errors.GateUnavailable        400 gate_unavailable, param gate
    support.errors.GateNotCleared         409 gate_not_cleared
    spend.errors.BudgetExceeded           429 budget_exceeded, Retry-After (a key's hard budget spent)
    model_files.versioned.StateError      409 conflict (a rollout change decided on a stale mode)
"""

from __future__ import annotations

import math
from typing import Any

from adapters.errors import (
    AdapterError,
    AdapterNotFound,
    AdapterNotServed,
    EvaluationFailed,
    IncompatibleAdapter,
    ProbeFailed,
    RollbackUnavailable,
)
from engines.errors import EngineRequestError, EngineUnavailable
from model_files.versioned import StateError
from router.errors import InvalidVersion, RouterVersionError, VersionNotFound, VersionRefused
from spend.errors import BudgetExceeded, SpendError
from support.errors import GateNotCleared, GateUnavailable, SupportError


class GatewayError(Exception):
    status: int = 500
    error_type: str = "api_error"
    default_code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.default_code

    def headers(self) -> dict[str, str]:
        return {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(GatewayError):
    status = 400
    error_type = "invalid_request_error"


class ContextLengthError(InvalidRequest):
    default_code = "context_length_exceeded"


class ModelNotFound(GatewayError):
    status = 404
    error_type = "invalid_request_error"
    default_code = "model_not_found"


class NotFound(GatewayError):
    status = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class AdapterNotFoundError(ModelNotFound):
    default_code = "adapter_not_found"


class AuthenticationError(GatewayError):
    status = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    error_type = "permission_error"
    default_code = "permission_denied"


class Conflict(GatewayError):
    status = 409
    error_type = "invalid_request_error"
    default_code = "conflict"


class RateLimited(GatewayError):
    status = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after_s: float, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"retry-after": str(max(1, round(self.retry_after_s)))}


class PayloadTooLarge(GatewayError):
    status = 413
    error_type = "invalid_request_error"
    default_code = "payload_too_large"


class UnsupportedMediaType(GatewayError):
    status = 415
    error_type = "invalid_request_error"
    default_code = "unsupported_media_type"


class EngineFailure(GatewayError):
    status = 500
    error_type = "api_error"
    default_code = "engine_error"


class ServiceUnavailable(GatewayError):
    status = 503
    error_type = "service_unavailable"
    default_code = "tier_unavailable"

    def __init__(self, message: str, *, retry_after_s: float | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        if self.retry_after_s is None:
            return {}
        return {"retry-after": str(max(1, math.ceil(self.retry_after_s)))}


# A remote tier's upstream refused a request with its own 4xx: the same status goes back.
_BY_STATUS: dict[int, type[GatewayError]] = {
    cls.status: cls for cls in (InvalidRequest, ModelNotFound, Conflict, PayloadTooLarge, UnsupportedMediaType)
}


def error_for_status(status: int) -> type[GatewayError]:
    """The error answering with `status`; 400 for a 4xx the gateway has no error of its own for."""
    return _BY_STATUS.get(status, InvalidRequest)


# ---- a capability's exceptions, as the edge answers them ------------------------------


# The capabilities' own exception trees: each answers as `translated` says.
CAPABILITY_ERRORS: tuple[type[Exception], ...] = (
    AdapterError, RouterVersionError, SupportError, StateError, SpendError,
)


def translated(exc: Exception) -> GatewayError | None:
    """The gateway error `exc` answers as; None: not a capability's refusal (a crash, 500).
    Most specific first: the registries' errors are also the versioned-state kit's."""
    if isinstance(exc, AdapterError):
        return _adapter_error(exc)
    if isinstance(exc, RouterVersionError):
        return _router_error(exc)
    if isinstance(exc, SupportError):
        return _support_error(exc)
    if isinstance(exc, StateError):
        return Conflict(exc.message)
    if isinstance(exc, BudgetExceeded):
        return RateLimited(exc.message, retry_after_s=exc.retry_after_s, code="budget_exceeded")
    if isinstance(exc, SpendError):
        return GatewayError(exc.message)
    return None


_ADAPTER_CODES: dict[type[AdapterError], str] = {
    IncompatibleAdapter: "incompatible_adapter", EvaluationFailed: "evaluation_failed",
}


def _adapter_error(exc: AdapterError) -> GatewayError:
    if isinstance(exc, AdapterNotServed):
        return AdapterNotFoundError(exc.message, param=exc.param)
    if isinstance(exc, AdapterNotFound):
        return AdapterNotFoundError(exc.message)
    if isinstance(exc, RollbackUnavailable):
        return Conflict(exc.message, code="rollback_unavailable")
    if isinstance(exc, ProbeFailed):
        return _probe_error(exc)
    return InvalidRequest(exc.message, param="path", code=_ADAPTER_CODES.get(type(exc), "invalid_adapter"))


def _probe_error(exc: ProbeFailed) -> GatewayError:
    # Only an adapter the engine refused is the caller's fault (400); an engine that is
    # dead or out of reach is 503, anything else the engine's failure (500).
    if isinstance(exc.cause, EngineRequestError):
        return InvalidRequest(
            f"The small tier refused adapter '{exc.adapter}': {exc.message}", param="path", code="invalid_adapter",
        )
    if isinstance(exc.cause, EngineUnavailable):
        return ServiceUnavailable(f"The small tier could not be reached: {exc.message}")
    return EngineFailure(f"The small tier failed while loading adapter '{exc.adapter}': {exc.message}")


def _router_error(exc: RouterVersionError) -> GatewayError:
    if isinstance(exc, InvalidVersion):
        return InvalidRequest(exc.message, param="version", code="invalid_version")
    if isinstance(exc, VersionNotFound):
        return NotFound(exc.message)
    if isinstance(exc, VersionRefused):
        return InvalidRequest(exc.message, param="path")
    if isinstance(exc, StateError):  # nothing to roll back to, or a stale change
        return Conflict(exc.message)
    return GatewayError(exc.message)


def _support_error(exc: SupportError) -> GatewayError:
    if isinstance(exc, GateUnavailable):
        return InvalidRequest(exc.message, param=exc.param, code=exc.code)
    if isinstance(exc, GateNotCleared):
        return Conflict(exc.message, code="gate_not_cleared")
    return GatewayError(exc.message)
