"""Stand-ins for Ray Serve's `DeploymentHandle`, for testing `HandleEngine` without Ray."""

from __future__ import annotations

from typing import Any


class _Stream:
    def __init__(self, exc: BaseException) -> None:
        self._exc = exc
        self.cancelled = False

    def __aiter__(self) -> "_Stream":
        return self

    async def __anext__(self) -> Any:
        raise self._exc

    def cancel(self) -> None:
        self.cancelled = True


class _Method:
    def __init__(self, handle: "FailingHandle") -> None:
        self._handle = handle

    def remote(self, *args: Any) -> Any:
        self._handle.calls += 1
        if self._handle.streaming:
            return _Stream(self._handle.exc)
        return self._failing()

    async def _failing(self) -> Any:
        raise self._handle.exc


class FailingHandle:
    """Every call raises `exc` as Ray raises it: from the awaited response, or from the
    first item of a streamed one."""

    def __init__(self, exc: BaseException, streaming: bool = False) -> None:
        self.exc = exc
        self.streaming = streaming
        self.calls = 0

    def options(self, stream: bool = False) -> "FailingHandle":
        twin = FailingHandle(self.exc, streaming=stream)
        twin.calls = self.calls
        return twin

    def __getattr__(self, name: str) -> _Method:
        return _Method(self)
