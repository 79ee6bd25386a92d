"""Engine-side exceptions. They cross Ray handles, so each one pickles with its data.

    EngineError                 engine failed while serving (HTTP 500 at the edge)
    ├── EngineUnavailable       not started / shutting down / dead (503)
    └── EngineRequestError      the request itself is unservable (400)
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
    pass


class EngineRequestError(EngineError):
    pass


class ContextLengthExceeded(EngineRequestError):
    pass
