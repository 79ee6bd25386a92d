"""How well the gate decides on held-out messages, and how long one decision takes."""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, Field

from gate.answerability import AnswerabilityGate
from gate.data import LABELS, GateData
from gate.verdict import GateThresholds

DEFAULT_TABLE = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


class ClassFigures(BaseModel):
    precision: float | None = Field(description="None: nothing was predicted as this class")
    recall: float | None = Field(description="None: no message of this class")
    support: int


class ThresholdRow(BaseModel):
    threshold: float
    precision: float | None = Field(description="Of the gated messages, the share not answerable")
    recall: float | None = Field(description="Of the not-answerable messages, the share gated")
    answerable_gated: float | None = Field(description="Of the answerable messages, the share gated")


class SourceFigures(BaseModel):
    rows: int
    label: str
    gated_share: float


class EvalReport(BaseModel):
    threshold: float
    rows: int
    precision: float | None = Field(description="'not answerable' (chitchat or no_context) at the threshold")
    recall: float | None
    per_class: dict[str, ClassFigures] = Field(description="Predicted label: answerable unless gated, else the likelier")
    by_source: dict[str, SourceFigures]
    thresholds: list[ThresholdRow]
    confusion: dict[str, dict[str, int]] = Field(description="true label -> predicted label -> messages")


class Latency(BaseModel):
    calls: int
    p50_ms: float
    p99_ms: float
    mean_ms: float


def predicted_labels(probs: NDArray[np.float64], threshold: float) -> NDArray[np.int64]:
    """Indices into LABELS, as `AnswerabilityGate.classify` decides (vectorised)."""
    gated = probs[:, 1] + probs[:, 2] >= threshold
    likelier = np.where(probs[:, 1] >= probs[:, 2], 1, 2)
    return np.where(gated, likelier, 0)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def threshold_row(probs: NDArray[np.float64], truth: NDArray[np.int64], threshold: float) -> ThresholdRow:
    gated = probs[:, 1] + probs[:, 2] >= threshold
    positive = truth != 0
    return ThresholdRow(
        threshold=threshold, precision=_ratio(int((gated & positive).sum()), int(gated.sum())),
        recall=_ratio(int((gated & positive).sum()), int(positive.sum())),
        answerable_gated=_ratio(int((gated & ~positive).sum()), int((~positive).sum())),
    )


def evaluate(
    probs: NDArray[np.float64], data: GateData, threshold: float, table: Sequence[float] = DEFAULT_TABLE,
) -> EvalReport:
    truth = np.asarray([LABELS.index(label) for label in data.labels])
    predicted = predicted_labels(probs, threshold)
    at = threshold_row(probs, truth, threshold)
    return EvalReport(
        threshold=threshold, rows=len(data), precision=at.precision, recall=at.recall,
        per_class={label: _class_figures(truth, predicted, k) for k, label in enumerate(LABELS)},
        by_source=_by_source(data, truth, predicted),
        thresholds=[threshold_row(probs, truth, t) for t in sorted({*table, threshold})],
        confusion={
            label: {other: int(((truth == k) & (predicted == j)).sum()) for j, other in enumerate(LABELS)}
            for k, label in enumerate(LABELS)
        },
    )


def _class_figures(truth: NDArray[np.int64], predicted: NDArray[np.int64], k: int) -> ClassFigures:
    hits = int(((truth == k) & (predicted == k)).sum())
    return ClassFigures(
        precision=_ratio(hits, int((predicted == k).sum())), recall=_ratio(hits, int((truth == k).sum())),
        support=int((truth == k).sum()),
    )


def _by_source(data: GateData, truth: NDArray[np.int64], predicted: NDArray[np.int64]) -> dict[str, SourceFigures]:
    sources = np.asarray(data.sources)
    out = {}
    for source in sorted(set(data.sources)):
        rows = sources == source
        labels = sorted({LABELS[k] for k in truth[rows]})
        out[source] = SourceFigures(
            rows=int(rows.sum()), label="/".join(labels), gated_share=float((predicted[rows] != 0).mean()),
        )
    return out


def measure(call: Callable[[int], object], n: int, warmup: int) -> Latency:
    """Sequential calls, one message each, after `warmup` untimed ones."""
    for i in range(min(warmup, n)):
        call(i)
    times = []
    for i in range(n):
        start = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - start) * 1000)
    values = np.asarray(times)
    return Latency(
        calls=n, p50_ms=float(np.percentile(values, 50)), p99_ms=float(np.percentile(values, 99)),
        mean_ms=float(values.mean()),
    )


def latency(gate: AnswerabilityGate, texts: Sequence[str], thresholds: GateThresholds,
            warmup: int = 50) -> dict[str, Latency]:
    """Per message: the whole decision (embedding included), the classifier alone on a
    precomputed embedding (what a caller that shares the embedding pays), the embedding alone."""
    embedded = [gate.embed(text) for text in texts]
    n = len(texts)
    return {
        "with_embedding": measure(lambda i: gate.classify(texts[i], None, thresholds), n, warmup),
        "classifier_only": measure(
            lambda i: gate.classify(texts[i], None, thresholds, embedding=embedded[i]), n, warmup
        ),
        "embedding_only": measure(lambda i: gate.embed(texts[i]), n, warmup),
    }
