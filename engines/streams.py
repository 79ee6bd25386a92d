"""Helpers for engine streams: async iterators of chunks that must be closed."""

from __future__ import annotations

from typing import AsyncIterator, TypeVar

from engines.types import GenerationChunk

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


def joined(chunks: list[GenerationChunk]) -> list[GenerationChunk]:
    """Runs of plain increments of one choice as one increment each (text, and logprobs when
    every one has them), in order; a chunk that finishes or carries tool calls stays as it is.
    A stream's increments are not tokens (a client concatenates them), so this loses nothing."""
    out: list[GenerationChunk] = []
    for chunk in chunks:
        last = out[-1] if out else None
        if last is not None and _joinable(last, chunk):
            logprobs = None if last.logprobs is None else last.logprobs + (chunk.logprobs or [])
            out[-1] = chunk.model_copy(update={"text": last.text + chunk.text, "logprobs": logprobs})
        else:
            out.append(chunk)
    return out


def _joinable(first: GenerationChunk, then: GenerationChunk) -> bool:
    plain = not (first.finish_reason or then.finish_reason or first.tool_calls or then.tool_calls)
    return plain and first.index == then.index and (first.logprobs is None) == (then.logprobs is None)
