"""Routing outcomes on a task the router never saw: Banking77 intents as multiple choice.

The router is trained on MMLU outcomes (Mixtral vs GPT-4). To see how it generalises,
this asks *our own* two tiers, through a running gateway (pinned `small` and `large`),
which of four intents a banking customer message expresses (the true one and three
seeded distractors, MMLU's answer format) and grades each answer. The CSV it writes has
RouteLLM's shape (`prompt`, one 0/1 column per tier, `category`), so `router eval` reads it
as it is:

    gateway serve &            # or any running gateway
    python -m evals.banking77 --url http://127.0.0.1:8000 --n 600 --out data/banking77/outcomes.csv
    router eval --model ~/.cache/routing-gateway/router/default \
        --data data/banking77/outcomes.csv --small-col small --large-col large --json
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from openai import AsyncOpenAI
from tqdm import tqdm

DATA = Path(__file__).resolve().parents[1] / "data" / "banking77" / "test.csv"
LETTERS = "ABCD"
ANSWER = re.compile(r"\b([ABCD])\b")


@dataclass(frozen=True)
class Question:
    prompt: str
    answer: str
    category: str


def questions(frame: pd.DataFrame, n: int, seed: int) -> list[Question]:
    """`n` messages (seeded sample), each with its intent among three random others."""
    rng = random.Random(seed)
    intents = sorted(frame["category"].unique())
    rows = frame.sample(n=min(n, len(frame)), random_state=seed)
    made = []
    for text, intent in zip(rows["text"], rows["category"]):
        options = rng.sample([i for i in intents if i != intent], 3) + [intent]
        rng.shuffle(options)
        lines = "\n".join(f"{letter}. {option.replace('_', ' ')}" for letter, option in zip(LETTERS, options))
        # No trailing "Answer:": the tiers' chat templates frame the answer themselves (with
        # it, Gemma's Question/Answer template makes it echo "Answer:" instead of a letter).
        prompt = f"Which intent does this banking customer message express?\n{text.strip()}\n{lines}"
        made.append(Question(prompt, LETTERS[options.index(intent)], intent))
    return made


def graded(answer: str, expected: str) -> bool:
    """The first standalone A-D letter of the answer is its choice."""
    found = ANSWER.search(answer)
    return bool(found) and found.group(1) == expected


async def ask(client: AsyncOpenAI, tier: str, question: Question, gate: asyncio.Semaphore) -> str:
    async with gate:
        response = await client.chat.completions.create(
            model=tier, messages=[{"role": "user", "content": question.prompt}],
            max_tokens=8, temperature=0.0,
        )
    return response.choices[0].message.content or ""


async def outcomes(url: str, items: list[Question], concurrency: int) -> pd.DataFrame:
    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=3, timeout=600)
    gate = asyncio.Semaphore(concurrency)
    columns: dict[str, list] = {"prompt": [q.prompt for q in items], "category": [q.category for q in items]}
    for tier in ("small", "large"):
        bar = tqdm(total=len(items), desc=tier)

        async def one(q: Question) -> str:
            answer = await ask(client, tier, q, gate)
            bar.update()
            return answer

        answers = await asyncio.gather(*(one(q) for q in items))
        bar.close()
        columns[tier] = [int(graded(a, q.answer)) for a, q in zip(answers, items)]
        columns[f"{tier}_answer"] = answers
    return pd.DataFrame(columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", type=Path, default=DATA.parent / "outcomes.csv")
    args = parser.parse_args()
    items = questions(pd.read_csv(DATA), args.n, args.seed)
    frame = asyncio.run(outcomes(args.url, items, args.concurrency))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    print(f"{len(frame)} questions: small correct {frame['small'].mean():.3f}, "
          f"large correct {frame['large'].mean():.3f} -> {args.out}")


if __name__ == "__main__":
    main()
