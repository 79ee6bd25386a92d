"""Train the cross-encoder here: no reranker weights are on PyPI.

Starts from the MiniLM encoder (a fresh one-logit head) and learns from (query, chunk)
pairs: the query's own article as positive, and as negatives the chunks the first stage
ranks highest that belong to another article (BM25 and dense hard negatives: the design
note's "looks relevant but isn't"), plus one random chunk.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Sequence

from pydantic import BaseModel, Field

from retrieval.first_stage import FirstStage
from retrieval.support_kb import LabelledQuery


class RerankerTraining(BaseModel):
    max_queries: int = Field(480, ge=1, description="Training queries sampled (2 cores: ~4 min)")
    positives: int = Field(2, ge=1, description="Chunks of the query's own article per query")
    hard_negatives: int = Field(2, ge=1, description="Hard negatives per query (plus one random chunk)")
    epochs: int = Field(1, ge=1)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(4e-5, gt=0)
    max_length: int = Field(192, ge=32)
    seed: int = 0


class TrainedReranker(BaseModel):
    path: str
    pairs: int
    queries: int
    base: str
    config: RerankerTraining


def training_pairs(
    first_stage: FirstStage, queries: Sequence[LabelledQuery], config: RerankerTraining
) -> list[tuple[str, str, float]]:
    rng = random.Random(config.seed)
    chosen = rng.sample(list(queries), min(config.max_queries, len(queries)))
    by_doc: dict[str, list[str]] = {}
    for chunk in first_stage.chunks:
        by_doc.setdefault(chunk.doc_id, []).append(chunk.passage())
    passages = [c.passage() for c in first_stage.chunks]
    pairs: list[tuple[str, str, float]] = []
    for labelled in chosen:
        if labelled.doc_id not in by_doc:
            continue
        own = by_doc[labelled.doc_id]
        pairs += [(labelled.query, text, 1.0) for text in rng.sample(own, min(config.positives, len(own)))]
        # Alternate BM25 and dense hard negatives, most confusable first.
        lexical = [h.chunk for h in first_stage.bm25(labelled.query, 10) if h.chunk.doc_id != labelled.doc_id]
        dense = [h.chunk for h in first_stage.dense(labelled.query, 10) if h.chunk.doc_id != labelled.doc_id]
        negatives: list[str] = []
        for chunk in _interleave(lexical, dense):
            if chunk.passage() not in negatives:
                negatives.append(chunk.passage())
            if len(negatives) == config.hard_negatives:
                break
        negatives.append(rng.choice(passages))
        pairs += [(labelled.query, text, 0.0) for text in negatives if text not in by_doc[labelled.doc_id]]
    rng.shuffle(pairs)
    return pairs


def train_reranker(
    first_stage: FirstStage, queries: Sequence[LabelledQuery], base: Path, out: Path,
    config: RerankerTraining | None = None,
) -> TrainedReranker:
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (
        CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments,
    )
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    config = config or RerankerTraining()
    torch.manual_seed(config.seed)
    pairs = training_pairs(first_stage, queries, config)
    model = CrossEncoder(str(base), num_labels=1, max_length=config.max_length, device="cpu")
    data = Dataset.from_dict({
        "query": [p[0] for p in pairs], "passage": [p[1] for p in pairs], "label": [p[2] for p in pairs],
    })
    args = CrossEncoderTrainingArguments(
        output_dir=str(out.parent / f".{out.name}.work"), num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size, learning_rate=config.learning_rate,
        warmup_steps=math.ceil(0.1 * config.epochs * math.ceil(len(pairs) / config.batch_size)), seed=config.seed, save_strategy="no", logging_steps=20, report_to="none",
        use_cpu=True, dataloader_num_workers=0, disable_tqdm=True,
    )
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=data, loss=BinaryCrossEntropyLoss(model))
    trainer.train()
    model.save_pretrained(str(out))
    record = TrainedReranker(path=str(out), pairs=len(pairs), queries=len({p[0] for p in pairs}), base=str(base), config=config)
    (out / "reranker.json").write_text(json.dumps(record.model_dump(), indent=2))
    return record


def _interleave(a: list, b: list) -> list:
    out = []
    for i in range(max(len(a), len(b))):
        out += a[i:i + 1] + b[i:i + 1]
    return out
