"""`retrieval` command line: ingest a folder, build the default KB, train and evaluate.

The commands read no settings: the entry point (`gateway.commands`) hands them the
`RetrievalSettings` section as the click context's `obj`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from retrieval.config import RetrievalSettings

app = typer.Typer(help="Knowledge base, hybrid retrieval and the cross-encoder reranker.", no_args_is_help=True)
DEFAULT_ORIGIN = "support-default"
SHIPPED_BITEXT = Path(__file__).resolve().parent.parent / "data" / "bitext" / "bitext_sample.csv"


def _settings(ctx: typer.Context) -> RetrievalSettings:
    settings = ctx.find_root().obj
    if not isinstance(settings, RetrievalSettings):
        raise RuntimeError("the retrieval commands need RetrievalSettings as the context obj")
    return settings


def _embedder():  # noqa: ANN202 - heavy import kept lazy
    from text.embedding import MiniLMEmbedder

    return MiniLMEmbedder(max_tokens=256)


@app.command()
def ingest(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="Markdown/text/JSONL documents")],
    kb: Annotated[Optional[Path], typer.Option(help="Knowledge base file (default: settings)")] = None,
) -> None:
    """Chunk and index a folder; only new or changed chunks are embedded."""
    from retrieval.documents import IngestError, read_folder
    from retrieval.store import KnowledgeStore

    try:
        documents = read_folder(folder)
    except IngestError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    report = KnowledgeStore(kb or _settings(ctx).kb).ingest(documents, _embedder(), "all-MiniLM-L6-v2")
    typer.echo(report.model_dump_json())


@app.command("prepare")
def prepare(
    ctx: typer.Context,
    data: Annotated[Path, typer.Option(help="Bitext-layout CSV")] = SHIPPED_BITEXT,
    force_reranker: Annotated[bool, typer.Option(help="Retrain the reranker even if present")] = False,
) -> None:
    """The default KB from the support data and a reranker trained on it (idempotent)."""
    ensure_default(_settings(ctx), data, force_reranker)


def ensure_default(settings: RetrievalSettings, data: Path = SHIPPED_BITEXT, force_reranker: bool = False) -> None:
    """Build (or incrementally refresh) the default KB and train the reranker if missing.

    A KB ingested from the user's own folder, or a reranker directory that holds a model,
    is left untouched.
    """
    from retrieval.knowledge import open_first_stage
    from retrieval.store import KnowledgeStore
    from retrieval.documents import read_folder
    from retrieval.support_kb import build_support_kb, read_queries, write_split
    from retrieval.training import train_reranker
    from text.embedding import default_minilm_path

    embedder = _embedder()
    store = KnowledgeStore(settings.kb)
    if store.origin() in (None, DEFAULT_ORIGIN):
        write_split(build_support_kb(data), settings.kb_source)
        report = store.ingest(
            read_folder(settings.kb_source / "articles"), embedder, "all-MiniLM-L6-v2", DEFAULT_ORIGIN
        )
        typer.echo(f"knowledge base {settings.kb}: {report.model_dump_json()}")
    present = (settings.reranker / "config.json").exists()
    if present and not force_reranker:
        typer.echo(f"reranker {settings.reranker}: present")
        return
    first_stage = open_first_stage(settings.kb, embedder, settings.title_weight)
    record = train_reranker(
        first_stage, read_queries(settings.kb_source / "train.jsonl"), default_minilm_path(), settings.reranker
    )
    typer.echo(f"reranker {settings.reranker}: trained on {record.queries} questions")


@app.command()
def search(
    ctx: typer.Context,
    query: str,
    k: int = 5,
    rerank: Annotated[bool, typer.Option(help="Rerank the top 20 with the cross-encoder")] = True,
) -> None:
    """Show the ranked chunks for one query."""
    from retrieval.knowledge import open_first_stage, reorder
    from retrieval.reranker import CrossEncoderScorer

    settings = _settings(ctx)
    first_stage = open_first_stage(settings.kb, _embedder(), settings.title_weight)
    hits = first_stage.hybrid(query, 20).hits
    if rerank:
        hits = reorder(hits, CrossEncoderScorer(settings.reranker, settings.max_length).score(
            query, [h.chunk.passage() for h in hits]))
    for hit in hits[:k]:
        typer.echo(f"{hit.score:8.3f}  {hit.chunk.id:40s}  {hit.chunk.title}")


@app.command("eval")
def evaluate(
    ctx: typer.Context,
    queries: Annotated[Optional[Path], typer.Option(help="Labelled queries (JSONL query, doc_id)")] = None,
    candidates: Annotated[int, typer.Option(help="Chunks the reranker sees")] = 20,
    limit: Annotated[int, typer.Option(help="Evaluate at most this many queries (0 = all)")] = 0,
    as_json: Annotated[Optional[Path], typer.Option("--json", help="Also write the scores here")] = None,
) -> None:
    """BM25, dense, hybrid and hybrid+rerank on held-out queries: the table and per-stage latency."""
    from retrieval.knowledge import open_first_stage, reorder
    from retrieval.evaluate import score_stage, table
    from retrieval.reranker import CrossEncoderScorer
    from retrieval.support_kb import read_queries

    settings = _settings(ctx)
    labelled = read_queries(queries or settings.kb_source / "heldout.jsonl")
    if limit:
        labelled = labelled[:limit]
    first_stage = open_first_stage(settings.kb, _embedder(), settings.title_weight)
    scorer = CrossEncoderScorer(settings.reranker, settings.max_length)

    def reranked(query: str) -> list[str]:
        hits = first_stage.hybrid(query, candidates).hits
        ranking = reorder(hits, scorer.score(query, [h.chunk.passage() for h in hits]))
        return [h.chunk.doc_id for h in ranking]

    stages = [
        score_stage("bm25", lambda q: [h.chunk.doc_id for h in first_stage.bm25(q, 50)], labelled),
        score_stage("dense", lambda q: [h.chunk.doc_id for h in first_stage.dense(q, 50)], labelled),
        score_stage("hybrid", lambda q: [h.chunk.doc_id for h in first_stage.hybrid(q, 50).hits], labelled),
        score_stage(f"hybrid+rerank@{candidates}", reranked, labelled),
    ]
    typer.echo(table(stages))
    hybrid, best = stages[2].ndcg_at_10, stages[3].ndcg_at_10
    gain = (best - hybrid) / hybrid if hybrid else float("inf")
    typer.echo(f"NDCG@10 gain of the reranker over hybrid: {gain:+.1%} (target >= +5%)")
    if as_json:
        as_json.parent.mkdir(parents=True, exist_ok=True)
        as_json.write_text(json.dumps({"stages": [s.model_dump() for s in stages], "ndcg_gain": gain}, indent=2))


def main(settings: RetrievalSettings) -> None:
    app(obj=settings)
