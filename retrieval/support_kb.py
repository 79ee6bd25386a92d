"""The default knowledge base, built from the shipped Bitext support sample.

Reference answers grouped by intent become articles (one per intent, a few answers as
its sections); the rows are split first so that the queries used to evaluate retrieval
(and to train the reranker) never had their own answer written into the KB.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from pydantic import BaseModel

from retrieval.documents import Document, Section

SECTIONS_PER_ARTICLE = 3
# The shipped sample carries no edit dates; one fixed date keeps rebuilds identical.
KB_DATE = datetime(2024, 6, 1, tzinfo=timezone.utc)


class LabelledQuery(BaseModel):
    """A query and the id of the article that answers it."""

    query: str
    doc_id: str


class SupportSplit(BaseModel):
    documents: list[Document]
    train: list[LabelledQuery]
    heldout: list[LabelledQuery]


def article_id(intent: str) -> str:
    return f"support/{intent}"


def title_of(intent: str) -> str:
    return intent.replace("_", " ").capitalize()


def build_support_kb(csv: Path, heldout_fraction: float = 0.25, seed: int = 0) -> SupportSplit:
    # The sample repeats some instructions: a query must not be both trained and evaluated on.
    frame = pd.read_csv(csv).drop_duplicates("instruction")
    rng = random.Random(seed)
    documents, train, heldout = [], [], []
    for intent, rows in sorted(frame.groupby("intent"), key=lambda kv: kv[0]):
        records = rows.to_dict("records")
        rng.shuffle(records)
        cut = max(1, round(len(records) * heldout_fraction))
        held, rest = records[:cut], records[cut:]
        doc_id = article_id(str(intent))
        sections = [
            Section(heading=f"Answer {i + 1}", text=str(r["response"]).strip())
            for i, r in enumerate(rest[:SECTIONS_PER_ARTICLE])
        ]
        documents.append(Document(
            id=doc_id, title=title_of(str(intent)), sections=sections, last_modified=KB_DATE,
            tags=[str(rows["category"].iloc[0]).lower(), str(intent)], source=f"{csv.name}:{intent}",
        ))
        train += [LabelledQuery(query=str(r["instruction"]), doc_id=doc_id) for r in rest]
        heldout += [LabelledQuery(query=str(r["instruction"]), doc_id=doc_id) for r in held]
    return SupportSplit(documents=documents, train=train, heldout=heldout)


def write_split(split: SupportSplit, folder: Path) -> None:
    """`articles/support.jsonl` (the folder to ingest), `train.jsonl` and `heldout.jsonl`
    (labelled queries, kept outside the ingested folder)."""
    (folder / "articles").mkdir(parents=True, exist_ok=True)
    _write_jsonl(folder / "articles" / "support.jsonl", [d.model_dump(mode="json") for d in split.documents])
    _write_jsonl(folder / "train.jsonl", [q.model_dump() for q in split.train])
    _write_jsonl(folder / "heldout.jsonl", [q.model_dump() for q in split.heldout])


def read_queries(path: Path) -> list[LabelledQuery]:
    return [LabelledQuery.model_validate_json(line) for line in path.read_text().splitlines() if line.strip()]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")  # unchanged files keep their mtime
