"""`retrieval` command line: ingest a folder, build the default KB, train and evaluate.

The commands read no settings: the entry point (`deployments.commands`) hands them the
`RetrievalSettings` section as the click context's `obj`.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer

from retrieval.config import RetrievalSettings
from retrieval.store import KnowledgeStore

app = typer.Typer(help="Knowledge base, hybrid retrieval and the cross-encoder reranker.", no_args_is_help=True)
DEFAULT_ORIGIN = "support-default"
REPO = Path(__file__).resolve().parent.parent
SHIPPED_BITEXT = REPO / "data" / "bitext" / "bitext_sample.csv"
ROT_RESULTS = REPO / "load_tests" / "results" / "kb_contradictions.json"


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


@app.command()
def review(
    ctx: typer.Context,
    kb: Annotated[Optional[Path], typer.Option(help="Knowledge base file (default: settings)")] = None,
    usage: Annotated[Optional[Path], typer.Option(help="Usage journal the gateway writes (default: settings)")] = None,
    contradictions: Annotated[bool, typer.Option(help="Check document pairs for contradicting facts")] = True,
    limit: Annotated[int, typer.Option(help="Rows printed per section")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole queue as JSON (for a review tool)")] = False,
) -> None:
    """The KB review queue: stale documents, contradicting pairs, failing categories, by query volume."""
    from retrieval.review import render, review as build_review

    settings = _settings(ctx)
    store = KnowledgeStore(kb or settings.kb)
    if not store.exists():
        typer.echo(f"error: no knowledge base at {store.path} (run `retrieval ingest`)", err=True)
        raise typer.Exit(1)
    now = datetime.now(timezone.utc)
    found = None
    if contradictions:
        from retrieval.contradictions import ContradictionFinder

        chunks, vectors, _ = store.load()
        finder = ContradictionFinder(_embedder(), settings.rot.sentence_similarity)
        found = finder.find(chunks, vectors, settings.rot.pair_similarity, settings.rot.neighbours)
    queue = build_review(store.documents(), _recorded(usage or settings.rot.usage, now, settings), found, settings.rot, now)
    typer.echo(queue.model_dump_json(indent=2) if as_json else render(queue, limit))


def _recorded(path: Path, now: datetime, settings: RetrievalSettings):  # noqa: ANN202 - lazy import
    from retrieval.review import WindowUsage, window_start
    from retrieval.usage import UsageStore

    if not path.exists():
        typer.echo(f"note: no usage journal at {path} yet: no query volume", err=True)
        return WindowUsage()
    journal, since = UsageStore(path), window_start(now, settings.rot)
    return WindowUsage(total=journal.queries(since), volume=journal.document_volume(since), categories=journal.categories(since))


@app.command("rot-eval")
def rot_eval(
    ctx: typer.Context,
    data: Annotated[Path, typer.Option(help="Bitext-layout CSV the base KB is built from")] = SHIPPED_BITEXT,
    seed: Annotated[int, typer.Option(help="Which changed values and paraphrases are drawn")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Also write the scores to --out")] = False,
    out: Annotated[Path, typer.Option(help="Where --json writes")] = ROT_RESULTS,
) -> None:
    """Contradiction detection on a planted set: the default KB plus copies with changed policy values."""
    import tempfile

    from retrieval.contradictions import ContradictionFinder
    from retrieval.planted import build_planted, score

    rot = _settings(ctx).rot
    planted = build_planted(data, seed)
    embedder = _embedder()
    with tempfile.TemporaryDirectory() as folder:
        store = KnowledgeStore(Path(folder) / "planted.sqlite")
        store.ingest(planted.documents, embedder, "all-MiniLM-L6-v2", "planted")
        chunks, vectors, _ = store.load()
    found = ContradictionFinder(embedder, rot.sentence_similarity).find(chunks, vectors, rot.pair_similarity, rot.neighbours)
    result = score(found, planted)
    typer.echo(
        f"planted set: {len(planted.documents)} documents, {len(chunks)} chunks, {result.n_planted} changed, "
        f"{result.n_negatives} unchanged/equivalent/paraphrased"
    )
    typer.echo(f"precision {result.precision:.3f} ({result.true_pairs}/{result.flagged_pairs} flagged pairs), "
               f"recall {result.recall:.3f} (of {result.n_planted})")
    for part, scores in result.by_part.items():
        typer.echo(f"  {part:8s} precision {scores.precision:.3f}  recall {scores.recall:.3f} "
                   f"({scores.recalled}/{scores.n_planted})")
    if as_json:
        out.parent.mkdir(parents=True, exist_ok=True)
        thresholds = rot.model_dump(include={"pair_similarity", "neighbours", "sentence_similarity"})
        payload = {"command": f"retrieval rot-eval --seed {seed} --json", "seed": seed, "thresholds": thresholds,
                   **result.model_dump(), "findings": [f.model_dump() for f in found]}
        out.write_text(json.dumps(payload, indent=2) + "\n")
        typer.echo(f"wrote {out}")


def main(settings: RetrievalSettings) -> None:
    app(obj=settings)
