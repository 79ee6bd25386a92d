"""Flag rates on the served answers of a run (issue 20 part 4, design note 002 phase 3).

Runs the gateway's flag evaluators (flags/, the default live config `flags` policy) over
every answer of a `router collect` CSV (`answer:<target>` columns: real outputs of the
tiers) and reports, per target and kind, how many answers would be flagged; a few
flagged examples per kind; and the faithfulness scorer on a planted set from the
knowledge base. Offline: no gateway, no Ray; MiniLM (and, with --compare-reranker, the
trained cross-encoder) on the CPU.

    python load_tests/flag_rates.py          # data/routing_eval/answers_embedded.csv, ~2 min on 2 cores
    python load_tests/flag_rates.py --answers answers.csv --config flags.json --compare-reranker

Faithfulness judges grounded answers only. The shipped answers were collected ungrounded
(`--extra-body '{"grounding": false}'`), so for the support questions (the grounding
domains) the script retrieves the context the gateway would have put in the prompt
(hybrid first stage, top 3) and judges the answer against it: a rate for answers that
never saw that context, an upper bound for grounded serving, reported apart
(`unfaithful_vs_retrieved`). The planted set measures the scorer itself: a chunk of an
article as context, the article's other section (a paraphrase: supported) or a section
of another article (unsupported) as the answer.

With the live app, the same evaluators run on served traffic once `user_config.flags`
is enabled: `gateway flags --since 1d --json` lists the flags and
`gateway_flag_checks_total` counts the answers checked.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flags.checker import check, evaluators  # noqa: E402
from flags.config import FlagsConfig  # noqa: E402
from flags.faithfulness import EmbeddingSupport, FaithfulnessEvaluator  # noqa: E402
from flags.sentences import sentences  # noqa: E402
from flags.types import KINDS, Answer, Passage  # noqa: E402

DEFAULT_ANSWERS = ROOT / "data" / "routing_eval" / "answers_embedded.csv"
DEFAULT_OUT = ROOT / "load_tests" / "results" / "flag_rates.json"
TOP_K = 3  # the grounding config's default top_k
EXAMPLES = 5


def read_answers(path: Path, with_references: bool) -> list[Answer]:
    csv.field_size_limit(10**9)
    answers = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            targets = {k.removeprefix("answer:"): v for k, v in row.items() if k.startswith("answer:")}
            if with_references and row.get("reference") and len(row["reference"].split()) > 8:
                targets["reference"] = row["reference"]  # the human support reply: a baseline
            for target, text in targets.items():
                if text and text.strip():
                    answers.append(Answer(request_id=f"{row['id']}:{target}", text=text, user_text=row["prompt"],
                                          category=row.get("category", ""), tier=target))
    return answers


def ground(answers: list[Answer], kb: Path, encoder: Any, domains: list[str]) -> int:
    """Attach the context the gateway would retrieve for each support question."""
    from retrieval.knowledge import open_first_stage

    stage = open_first_stage(kb, encoder)
    contexts: dict[str, list[Passage]] = {}
    for answer in answers:
        if answer.category not in domains:
            continue
        if answer.user_text not in contexts:
            hits = stage.hybrid(answer.user_text, 20).hits[:TOP_K]
            contexts[answer.user_text] = [Passage(id=h.chunk.id, text=h.chunk.text) for h in hits]
        answer.passages = contexts[answer.user_text]
    return len(contexts)


def rates(answers: list[Answer], config: FlagsConfig, support: EmbeddingSupport | None) -> dict[str, Any]:
    chosen = evaluators(config, support)
    per_target: dict[str, Counter[str]] = defaultdict(Counter)
    examples: dict[str, list[dict[str, str]]] = defaultdict(list)
    for i, answer in enumerate(answers, start=1):
        if i % 200 == 0:
            print(f"  {i}/{len(answers)} answers checked", file=sys.stderr, flush=True)
        counts = per_target[answer.tier]
        counts["answers"] += 1
        counts["judged_unfaithful"] += bool(answer.passages)
        checked = check(answer, chosen)
        counts["failed"] += bool(checked.failed)
        for kind in {f.kind for f in checked.flags}:
            counts[kind] += 1
        for flag in checked.flags:
            if len(examples[flag.kind]) < EXAMPLES:
                examples[flag.kind].append({"id": answer.request_id, "detail": flag.detail, "answer": answer.text[:240]})
    per_target["all"] = sum(per_target.values(), Counter())
    return {"per_target": {t: summarise(c) for t, c in per_target.items()}, "examples": dict(examples)}


def summarise(counts: Counter[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"answers": counts["answers"], "evaluator_failures": counts["failed"]}
    for kind in KINDS:
        base = counts["judged_unfaithful"] if kind == "unfaithful" else counts["answers"]
        name = "unfaithful_vs_retrieved" if kind == "unfaithful" else kind
        out[name] = {"judged": base, "flagged": counts[kind], "rate": round(counts[kind] / base, 4) if base else None}
    return out


def planted(kb: Path, support: EmbeddingSupport, config: FlagsConfig, reranker: Path | None, seed: int = 0) -> dict[str, Any]:
    """Each article's first chunk as context; its second chunk (supported) or another
    article's first chunk (unsupported) as the answer."""
    from sklearn.metrics import roc_auc_score

    from retrieval.store import KnowledgeStore

    chunks, _, _ = KnowledgeStore(kb).load()
    by_doc: dict[str, list[Any]] = defaultdict(list)
    for chunk in chunks:
        by_doc[chunk.doc_id].append(chunk)
    docs = sorted(d for d, cs in by_doc.items() if len(cs) >= 2)
    rng = random.Random(seed)
    cases = []  # (context chunk, answer text, supported)
    for doc in docs:
        other = rng.choice([d for d in docs if d != doc])
        cases += [(by_doc[doc][0], by_doc[doc][1].text, 1), (by_doc[doc][0], by_doc[other][0].text, 0)]
    evaluator = FaithfulnessEvaluator(support, config.faithfulness)
    flagged: dict[int, list[bool]] = {0: [], 1: []}
    labels, minilm, cross = [], [], []
    scorer = _cross_encoder(reranker) if reranker else None
    for context, text, label in cases:
        answer = Answer(request_id="planted", text=text, passages=[Passage(id=context.id, text=context.text)])
        flagged[label].append(bool(evaluator.evaluate(answer)))
        claims = [s for s in sentences(text) if len(s.split()) >= config.faithfulness.min_words]
        evidence = sentences(context.text)
        labels += [label] * len(claims)
        minilm += support.support(claims, evidence)
        if scorer is not None:
            cross += [max(scorer.score(claim, evidence).scores) for claim in claims]
    result: dict[str, Any] = {
        "articles": len(docs), "sentences": len(labels), "supported_sentences": sum(labels),
        "sentence_auc_minilm": round(roc_auc_score(labels, minilm), 4),
        "answers_flagged_rate": {
            "supported": round(sum(flagged[1]) / len(flagged[1]), 4),
            "unsupported": round(sum(flagged[0]) / len(flagged[0]), 4),
        },
    }
    if cross:
        result["sentence_auc_cross_encoder"] = round(roc_auc_score(labels, cross), 4)
    return result


def _cross_encoder(path: Path) -> Any:
    from retrieval.reranker import CrossEncoderScorer

    return CrossEncoderScorer(path, max_length=64)


def main() -> None:
    from deployments.settings import Settings

    settings = Settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=Path, default=DEFAULT_ANSWERS, help="router collect CSV (answer:<target>)")
    parser.add_argument("--config", type=Path, help="JSON of the live `flags` section (default: its defaults)")
    parser.add_argument("--kb", type=Path, default=settings.retrieval.kb, help="Knowledge base (grounding, planted set)")
    parser.add_argument("--no-references", action="store_true", help="Leave out the Bitext reference replies")
    parser.add_argument("--compare-reranker", action="store_true", help="Also score the planted set with the cross-encoder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    from text.embedding import MiniLMEmbedder

    started = time.perf_counter()
    raw = json.loads(args.config.read_text()) if args.config else {}
    config = FlagsConfig.model_validate({**raw, "enabled": True, "sample_rate": 1.0})
    encoder = MiniLMEmbedder(max_tokens=256)  # as the ingress builds it
    support = EmbeddingSupport(encoder)
    answers = read_answers(args.answers, not args.no_references)
    queries = ground(answers, args.kb, encoder, settings.retrieval.grounding.domains) if args.kb.exists() else 0
    report: dict[str, Any] = {
        "source": str(args.answers.relative_to(ROOT) if args.answers.is_relative_to(ROOT) else args.answers),
        "config": config.model_dump(mode="json"),
        "grounded_queries": queries,
        "note": "promise, tone, pii: every answer; unfaithful_vs_retrieved: support questions only, judged "
                "against the context the gateway would retrieve (these answers were generated ungrounded)",
        **rates(answers, config, support),
    }
    if args.kb.exists():
        reranker = settings.retrieval.reranker if args.compare_reranker else None
        report["faithfulness_planted"] = planted(args.kb, support, config, reranker)
    report["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for target, row in report["per_target"].items():
        cells = "  ".join(
            f"{k}={v['flagged']}/{v['judged']}" for k, v in row.items() if isinstance(v, dict)
        )
        print(f"{target:12s} {cells}")
    if "faithfulness_planted" in report:
        print("planted:", json.dumps(report["faithfulness_planted"]))
    print(f"wrote {args.out} ({report['seconds']} s)")


if __name__ == "__main__":
    main()
