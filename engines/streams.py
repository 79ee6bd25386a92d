"""Helpers for engine streams: async iterators of chunks that must be closed."""

from __future__ import annotations

from typing import AsyncIterator, TypeVar

T = TypeVar("T")


async def first_chunk(stream: AsyncIterator[T]) -> T:
    """The stream's first item, read before answering so early failures get a real status.

    If reading it fails (or is cancelled) the stream is closed before the error goes on:
    an engine stream left open keeps generating for nobody."""
    try:
        return await anext(stream)
    except BaseException:
        await stream.aclose()  # type: ignore[attr-defined]
        raise
