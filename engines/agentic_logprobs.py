"""vLLM's sample logprobs as the gateway's TokenLogprob.

For each generated token vLLM gives a dict token id -> Logprob holding the sampled token
and the top `k` (k or k + 1 entries: the sampled one may be outside the top k). The
sampled token's entry is the chosen one; `top` is the k best by rank, whichever was
sampled, as OpenAI's `top_logprobs` are.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping, Protocol, Sequence

from engines.types import TokenLogprob, TopLogprob

# vLLM's own floor for -inf (a token masked out by structured outputs), which JSON can't carry.
FLOOR = -9999.0


class LogprobLike(Protocol):
    """vllm.logprobs.Logprob."""

    logprob: float
    rank: int | None
    decoded_token: str | None


Position = Mapping[int, LogprobLike] | None
Decode = Callable[[int], str]


def token_logprobs(
    token_ids: Sequence[int], positions: Iterable[Position], k: int, decode: Decode
) -> list[TokenLogprob]:
    """`positions` aligned with `token_ids` (vLLM's `CompletionOutput.logprobs`)."""
    return [_token(token_id, position or {}, k, decode) for token_id, position in zip(token_ids, positions)]


def _token(token_id: int, position: Mapping[int, LogprobLike], k: int, decode: Decode) -> TokenLogprob:
    chosen = position.get(token_id)
    text = _text(token_id, chosen, decode)
    ranked = sorted(position.items(), key=lambda item: _rank(item[1]))[:k]
    return TokenLogprob(
        token=text,
        logprob=max(chosen.logprob, FLOOR) if chosen is not None else FLOOR,
        bytes=_bytes(text),
        top=[_top(other_id, other, decode) for other_id, other in ranked],
    )


def _top(token_id: int, logprob: LogprobLike, decode: Decode) -> TopLogprob:
    text = _text(token_id, logprob, decode)
    return TopLogprob(token=text, logprob=max(logprob.logprob, FLOOR), bytes=_bytes(text))


def _rank(logprob: LogprobLike) -> tuple[int, float]:
    # Rank 1 is the most likely; without a rank, order by the logprob itself.
    return (logprob.rank if logprob.rank is not None else 1 << 30, -logprob.logprob)


def _text(token_id: int, logprob: LogprobLike | None, decode: Decode) -> str:
    if logprob is not None and logprob.decoded_token is not None:
        return logprob.decoded_token
    return decode(token_id)


def _bytes(text: str) -> list[int]:
    return list(text.encode("utf-8", errors="replace"))
