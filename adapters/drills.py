"""Deliberately bad adapters, for canary and rollback drills.

A drill needs an adapter that is real (trained on the same base, same shape, selected
for the same queries) but wrong. Training on the domain's own answers shuffled among
its questions gives one: it learns the domain's answers, not which question each answers.
Only the positive training pairs are shuffled; anchors, changed-behaviour pairs and the
held-out sets stay as they are, so the evaluation still measures the real task.

How wrong, measured (refund, seed 0, default settings): the evaluation gate passes it,
held-out answer loss 2.169 -> 1.367 against the real adapter's 1.379, because a domain's
answers share one template; and its greedy answers still read plausibly. What it lost is
the pairing: a held-out answer given to another question costs only +0.13 more than on
its own question, +0.29 with the real adapter and +0.20 on the base model.
"""

from __future__ import annotations

import random
from collections import defaultdict

from adapters.examples import DataError, DomainExamples


def shuffle_responses(examples: DomainExamples, seed: int = 0) -> DomainExamples:
    """A copy whose positive training pairs trade responses: none keeps its own text."""
    positions = [i for i, e in enumerate(examples.train) if e.kind == "positive"]
    responses = [examples.train[i].response for i in positions]
    deranged = derange(responses, random.Random(seed))
    train = list(examples.train)
    for i, response in zip(positions, deranged):
        train[i] = train[i].model_copy(update={"response": response})
    return examples.model_copy(update={"train": train, "responses": "shuffled"}, deep=True)


def derange(texts: list[str], rng: random.Random) -> list[str]:
    """The same texts, reordered so that no position keeps an equal text.

    Equal texts are laid out next to each other (groups and members in random order),
    then every slot takes the text `m` slots further on, `m` the largest group: a shift
    that never lands inside the own group, which exists as long as m <= n/2.
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for i, text in enumerate(texts):
        groups[text].append(i)
    largest = max((len(g) for g in groups.values()), default=0)
    if len(texts) < 2 or 2 * largest > len(texts):
        raise DataError(
            f"cannot shuffle {len(texts)} responses so that none keeps its own "
            f"(the most frequent one occurs {largest} times)"
        )
    order = list(groups.values())
    rng.shuffle(order)
    for group in order:
        rng.shuffle(group)
    slots = [i for group in order for i in group]
    out = list(texts)
    for k, slot in enumerate(slots):
        out[slot] = texts[slots[(k + largest) % len(slots)]]
    return out
