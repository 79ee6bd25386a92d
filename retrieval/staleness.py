"""Temporal staleness (design note 001, "Knowledge base rot"): a document not modified for
a long time that still answers a noticeable share of grounded queries is high-risk.

Volume is what the usage journal says: the grounded queries over the window whose
prompt held one of the document's chunks; the share divides it by all grounded queries
of the window, retrieval failures included (they are queries the KB was asked).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Mapping, Sequence

from pydantic import BaseModel

from retrieval.store import DocumentInfo


class DocumentUsage(BaseModel):
    doc_id: str
    title: str
    last_modified: datetime
    age_days: float
    queries: int
    share: float


StaleDocument = DocumentUsage


def document_usage(
    documents: Sequence[DocumentInfo], volume: Mapping[str, int], total: int, now: datetime
) -> list[DocumentUsage]:
    """Every document with its age and query volume, most queried first (ties: oldest first)."""
    rows = [
        DocumentUsage(
            doc_id=doc.doc_id, title=doc.title, last_modified=doc.last_modified,
            age_days=round((now - _aware(doc.last_modified)) / timedelta(days=1), 1),
            queries=volume.get(doc.doc_id, 0), share=volume.get(doc.doc_id, 0) / total if total > 0 else 0.0,
        )
        for doc in documents
    ]
    return sorted(rows, key=lambda d: (-d.queries, -d.age_days, d.doc_id))


def stale_documents(
    documents: Sequence[DocumentInfo], volume: Mapping[str, int], total: int, now: datetime,
    stale_after_days: float, min_share: float,
) -> list[DocumentUsage]:
    """Documents older than `stale_after_days` serving more than `min_share` of the `total`
    grounded queries, most queries first (ties: the oldest first)."""
    if total <= 0:
        return []
    return [
        d for d in document_usage(documents, volume, total, now)
        if d.age_days > stale_after_days and d.share > min_share
    ]


def _aware(moment: datetime) -> datetime:
    """A date without a zone (a JSONL `"2024-05-01"`) is taken as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
