"""LLM-as-judge: a rubric filled with each item, sent to any OpenAI-compatible endpoint
(a gateway target or another server), the reply parsed by `verdicts`.

Greedy decoding (temperature 0), at most `concurrency` calls in flight. A reply without a
readable score is left out (None) and counted `unparseable`; a failed call is counted
`failed`. Pairwise judging asks in both orders: a verdict that flips with the order is
position bias, scored as a tie and counted `position_biased`.

`grade` runs its own event loop; from async code (e.g. the shadow flywheel inside the
gateway) call `agrade` / `agrade_pairs`.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from router.grading.protocol import GradeItem, PairItem, Score
from router.grading.verdicts import Verdict, parse_score, parse_verdict

RUBRICS = Path(__file__).parent / "rubrics"
NO_REFERENCE = "(none)"
SAMPLES_KEPT = 5
T = TypeVar("T")

_PLACEHOLDER = re.compile(r"\{(prompt|answer|reference|answer_a|answer_b)\}")
_PAIR_SCORES: dict[Verdict, tuple[float, float]] = {"A": (1.0, 0.0), "B": (0.0, 1.0), "tie": (0.5, 0.5)}
_SWAPPED: dict[Verdict, Verdict] = {"A": "B", "B": "A", "tie": "tie"}


class ChatFn(Protocol):
    async def __call__(self, prompt: str) -> str:
        """The judge model's reply to one user message."""
        ...


def load_rubric(path: Path | None, pairwise: bool = False) -> str:
    """The rubric template at `path`, else the shipped default for the mode."""
    return (path or RUBRICS / ("pairwise.txt" if pairwise else "default.txt")).read_text()


def fill(template: str, **values: str) -> str:
    """Placeholders replaced in one pass: an answer quoting `{reference}` stays as written,
    and JSON braces elsewhere in the rubric need no escaping (unlike `str.format`)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def combine(first: Verdict, second: Verdict) -> tuple[tuple[float, float], bool]:
    """Scores of (a, b) from the verdicts on (a, b) and on (b, a), and whether they agree."""
    if first != _SWAPPED[second]:
        return _PAIR_SCORES["tie"], False
    return _PAIR_SCORES[first], True


class OpenAIChat:
    """`ChatFn` over `openai.AsyncOpenAI`. The client is made in the running loop (an
    httpx pool cannot outlive the loop it was opened in; each `grade` runs a new one)."""

    def __init__(self, base_url: str, model: str, api_key: str, max_tokens: int = 512,
                 timeout_s: float = 120.0) -> None:
        self.model = model
        self._options = {"base_url": base_url, "api_key": api_key, "timeout": timeout_s}
        self._max_tokens = max_tokens
        self._clients: dict[int, Any] = {}

    async def __call__(self, prompt: str) -> str:
        response = await self._client().chat.completions.create(
            model=self.model, messages=[{"role": "user", "content": prompt}],
            temperature=0.0, max_tokens=self._max_tokens,
        )
        return response.choices[0].message.content or ""

    def _client(self) -> Any:
        loop = id(asyncio.get_running_loop())
        if loop not in self._clients:
            from openai import AsyncOpenAI

            self._clients = {loop: AsyncOpenAI(**self._options)}
        return self._clients[loop]


class _Judge:
    """What both judges share: bounded calls, counters, a few unreadable replies kept."""

    def __init__(self, chat: ChatFn, rubric: str, concurrency: int) -> None:
        self._chat = chat
        self.rubric = rubric
        self._concurrency = max(1, concurrency)
        self._counts: Counter[str] = Counter()
        self.unparseable_samples: list[str] = []

    def counts(self) -> Mapping[str, int]:
        return dict(self._counts)

    async def _gather(self, prompts: Sequence[str], parse: Callable[[str], T | None]) -> list[T | None]:
        gate = asyncio.Semaphore(self._concurrency)

        async def one(prompt: str) -> T | None:
            async with gate:
                try:
                    reply = await self._chat(prompt)
                except Exception:  # one failed call leaves one item ungraded, not the batch
                    self._counts["failed"] += 1
                    return None
            parsed = parse(reply)
            if parsed is None:
                self._counts["unparseable"] += 1
                if len(self.unparseable_samples) < SAMPLES_KEPT:
                    self.unparseable_samples.append(reply[-500:])
            return parsed

        return list(await asyncio.gather(*(one(p) for p in prompts)))


class JudgeGrader(_Judge):
    """Scores each answer on the rubric's scale [low, high], mapped to [0, 1]."""

    def __init__(self, chat: ChatFn, rubric: str | None = None, scale: tuple[int, int] = (1, 5),
                 concurrency: int = 8) -> None:
        super().__init__(chat, rubric if rubric is not None else load_rubric(None), concurrency)
        if scale[0] >= scale[1]:
            raise ValueError(f"judge scale must run low to high, got {scale}")
        self.scale = scale

    def grade(self, items: Sequence[GradeItem]) -> list[Score]:
        return asyncio.run(self.agrade(items))

    async def agrade(self, items: Sequence[GradeItem]) -> list[Score]:
        prompts = [fill(self.rubric, prompt=i.prompt, answer=i.answer,
                        reference=i.reference or NO_REFERENCE) for i in items]
        return await self._gather(prompts, lambda reply: parse_score(reply, *self.scale))


class PairwiseJudge(_Judge):
    """Judges each pair as (a, b) and as (b, a); see `combine`."""

    def __init__(self, chat: ChatFn, rubric: str | None = None, concurrency: int = 8) -> None:
        rubric = rubric if rubric is not None else load_rubric(None, pairwise=True)
        super().__init__(chat, rubric, concurrency)

    def grade_pairs(self, items: Sequence[PairItem]) -> list[tuple[float, float] | None]:
        return asyncio.run(self.agrade_pairs(items))

    async def agrade_pairs(self, items: Sequence[PairItem]) -> list[tuple[float, float] | None]:
        prompts = [self._prompt(i, swap) for i in items for swap in (False, True)]
        verdicts = await self._gather(prompts, parse_verdict)
        return [self._scores(verdicts[2 * k], verdicts[2 * k + 1]) for k in range(len(items))]

    def _prompt(self, item: PairItem, swap: bool) -> str:
        a, b = (item.answer_b, item.answer_a) if swap else (item.answer_a, item.answer_b)
        return fill(self.rubric, prompt=item.prompt, reference=item.reference or NO_REFERENCE,
                    answer_a=a, answer_b=b)

    def _scores(self, first: Verdict | None, second: Verdict | None) -> tuple[float, float] | None:
        if first is None or second is None:
            self._counts["pairs_left_out"] += 1
            return None
        scores, consistent = combine(first, second)
        if not consistent:
            self._counts["position_biased"] += 1
        return scores
