"""The knowledge-base review queue (design note 001, "Knowledge base rot"): stale documents,
contradicting document pairs and failing categories, each ranked by query volume so the
reviewers' time goes where the traffic is. The ML side detects the rot; people fix it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Mapping, Sequence

from pydantic import BaseModel, Field

from retrieval.config import RotSettings
from retrieval.contradictions import Contradiction
from retrieval.staleness import DocumentUsage, document_usage, stale_documents
from retrieval.store import DocumentInfo
from retrieval.usage import CategoryOutcomes

EXAMPLES_PER_PAIR = 3
MOST_RETRIEVED = 100  # the note's freshness distribution of the most-retrieved documents


class ContradictingPair(BaseModel):
    doc_a: str
    doc_b: str
    title_a: str
    title_b: str
    queries: int = Field(description="Grounded queries over the window that either document served")
    kinds: list[str]
    findings: int
    examples: list[Contradiction]


class FailingCategory(BaseModel):
    category: str
    queries: int
    failures: int
    failure_rate: float


class ReviewQueue(BaseModel):
    generated_at: datetime
    window_days: float
    grounded_queries: int = Field(description="Grounded queries over the window, retrieval failures included")
    documents: int
    stale: list[DocumentUsage]
    contradictions: list[ContradictingPair] | None = Field(description="None: not checked (--no-contradictions)")
    failing_categories: list[FailingCategory]
    categories: list[FailingCategory] = Field(description="Every category's failure rate over the window")
    most_retrieved: list[DocumentUsage] = Field(
        description="The documents serving the most queries over the window, with their age (freshness distribution)"
    )


class WindowUsage(BaseModel):
    """What the usage journal says about the window."""

    total: int = 0
    volume: dict[str, int] = Field(default_factory=dict)
    categories: list[CategoryOutcomes] = Field(default_factory=list)


def review(
    documents: Sequence[DocumentInfo], usage: WindowUsage, contradictions: Sequence[Contradiction] | None,
    settings: RotSettings, now: datetime,
) -> ReviewQueue:
    stale = stale_documents(documents, usage.volume, usage.total, now, settings.stale_after_days, settings.min_share)
    categories = _categories(usage.categories)
    failing = [
        c for c in categories
        if c.queries >= settings.min_category_queries and c.failure_rate > settings.max_failure_rate
    ]
    pairs = None if contradictions is None else contradicting_pairs(contradictions, documents, usage.volume)
    return ReviewQueue(
        generated_at=now, window_days=settings.window_days, grounded_queries=usage.total, documents=len(documents),
        stale=stale, contradictions=pairs, failing_categories=failing, categories=categories,
        most_retrieved=[d for d in document_usage(documents, usage.volume, usage.total, now) if d.queries][:MOST_RETRIEVED],
    )


def window_start(now: datetime, settings: RotSettings) -> datetime:
    return now - timedelta(days=settings.window_days)


def contradicting_pairs(
    found: Sequence[Contradiction], documents: Sequence[DocumentInfo], volume: Mapping[str, int]
) -> list[ContradictingPair]:
    """Findings grouped by document pair, the pairs most queried first."""
    titles = {d.doc_id: d.title for d in documents}
    grouped: dict[tuple[str, str], list[Contradiction]] = {}
    for finding in found:
        key = tuple(sorted((finding.doc_a, finding.doc_b)))
        grouped.setdefault(key, []).append(finding)  # type: ignore[arg-type]
    pairs = [
        ContradictingPair(
            doc_a=a, doc_b=b, title_a=titles.get(a, a), title_b=titles.get(b, b),
            queries=volume.get(a, 0) + volume.get(b, 0),
            kinds=sorted({k for f in findings for k in f.kinds}), findings=len(findings),
            examples=findings[:EXAMPLES_PER_PAIR],
        )
        for (a, b), findings in grouped.items()
    ]
    return sorted(pairs, key=lambda p: (-p.queries, -p.findings, p.doc_a, p.doc_b))


def _categories(outcomes: Sequence[CategoryOutcomes]) -> list[FailingCategory]:
    rows = [
        FailingCategory(category=o.category, queries=o.queries, failures=o.failures, failure_rate=round(o.failure_rate, 4))
        for o in outcomes
    ]
    return sorted(rows, key=lambda c: (-c.failures, -c.queries, c.category))


def render(queue: ReviewQueue, limit: int = 20) -> str:
    """The queue as text: three ranked sections."""
    lines = [
        f"knowledge-base review {queue.generated_at:%Y-%m-%d %H:%M} UTC: {queue.documents} documents, "
        f"{queue.grounded_queries} grounded queries over {queue.window_days:g} days",
        "", f"stale documents ({len(queue.stale)}): not modified for long, still serving queries",
    ]
    lines += [
        f"  {d.queries:7d} q  {d.share:6.1%}  {d.age_days:6.0f} d old  {d.doc_id}  ({d.title})" for d in queue.stale[:limit]
    ] or ["  none"]
    if queue.contradictions is None:
        lines += ["", "contradicting documents: not checked"]
    else:
        lines += ["", f"contradicting documents ({len(queue.contradictions)})"]
        for pair in queue.contradictions[:limit]:
            lines.append(f"  {pair.queries:7d} q  {pair.doc_a} <> {pair.doc_b}  [{', '.join(pair.kinds)}]")
            example = pair.examples[0]
            lines.append(f"             {example.sentence_a!r}")
            lines.append(f"             {example.sentence_b!r}")
        if not queue.contradictions:
            lines.append("  none")
    lines += ["", f"failing categories ({len(queue.failing_categories)}): retrieval found no relevant chunk"]
    lines += [
        f"  {c.failures:7d} of {c.queries:7d} q  {c.failure_rate:6.1%}  {c.category or '(none)'}"
        for c in queue.failing_categories[:limit]
    ] or ["  none"]
    return "\n".join(lines)
