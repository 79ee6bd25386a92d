"""Small labelled gate data and a trained gate on it (hashed bag-of-words embedder)."""

from __future__ import annotations

import csv
from pathlib import Path

ANSWERABLE = [
    "how do I cancel my order 48213", "where is my refund for the blue jacket", "change the shipping address on my order",
    "how can I download my invoice for march", "reset the password of my premium account", "what is the capital of peru",
    "track my package to madrid", "delete my account and my data",
]
CHITCHAT = [
    "hey how are you", "hello there", "thanks a lot", "lol that is funny", "good morning", "bye see you",
    "haha nice one", "how is your day going",
]
NO_CONTEXT = [
    "it still doesn't work", "any update on that", "when will this be fixed", "did you do it yet",
    "same problem as before", "it is still broken", "is it done", "what about the other one",
]


def write_gate_csv(path: Path, test_every: int = 4) -> Path:
    """Each class in four groups of two messages; every `test_every`-th group is held out."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label", "source", "group", "split"])
        writer.writeheader()
        for label, texts in (("answerable", ANSWERABLE), ("chitchat", CHITCHAT), ("no_context", NO_CONTEXT)):
            for i, text in enumerate(texts):
                group = i // 2
                split = "test" if group % test_every == test_every - 1 else "train"
                writer.writerow({"text": text, "label": label, "source": f"src_{label}",
                                 "group": f"{label}:{group}", "split": split})
    return path
