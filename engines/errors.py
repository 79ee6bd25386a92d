"""Engine-side exceptions. They cross Ray handles, so each one pickles with its data.

    EngineError                 engine failed while serving (HTTP 500 at the edge)
    ├── EngineUnavailable       not started / shutting down / dead; a remote tier's upstream
    │                           answered 5xx, 429, 401/403 or could not be reached (503).
    │                           data: retry_after_s, when the upstream asked for a pause
    │   ├── EngineBusy          the tier's queue is full (Ray Serve back-pressure): alive, just
    │   │                       loaded; never a breaker failure (503 with Retry-After)
    │   └── EngineTimedOut      the engine's own wait for an answer ran out (a remote upstream's
    │                           read timeout): slow, which a long answer on a live tier also is
    └── EngineRequestError      the request itself is unservable (400). data: param; a remote
        │                       tier's upstream refusal also carries its 4xx `status` and `code`
        └── ContextLengthExceeded   prompt (+ max_tokens) over the tier's context
"""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    def __init__(self, message: str, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.data))


def _rebuild(cls: type[EngineError], message: str, data: dict[str, Any]) -> EngineError:
    return cls(message, **data)


class EngineUnavailable(EngineError):
    @property
    def retry_after_s(self) -> float | None:
        """How long the upstream asked callers to wait (its Retry-After), if it said."""
        return self.data.get("retry_after_s")


class EngineBusy(EngineUnavailable):
    pass


class EngineTimedOut(EngineUnavailable):
    pass


class EngineRequestError(EngineError):
    @property
    def status(self) -> int:
        """The HTTP status the refusal maps to: an upstream's own 4xx, else 400."""
        return self.data.get("status", 400)


class ContextLengthExceeded(EngineRequestError):
    pass
