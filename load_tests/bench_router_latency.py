"""Routing decision latency: the learned router's whole decision (embedding, kNN
history, stacked models, LightGBM heads, calibration, threshold) for one query at a
time, at prompt lengths up to 512 tokens. Saves load_tests/results/router_latency.json.

    python load_tests/bench_router_latency.py [--model DIR] [--n 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
BASE = ("My order arrived damaged and the refund I was promised has not shown up on my card, "
        "even though support said it would take five days unless the bank delays it. ")


def main() -> None:
    from deployments.settings import Settings
    from router.decision import RoutingQuery, TierLoad
    from text.embedding import build_embedder
    from router.learned import LearnedPolicy, LearnedRoutingConfig
    from router.model import RouterModel, Scorer
    from router.thresholds import ShareThreshold

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=Settings().router.model_dir)
    parser.add_argument("--n", type=int, default=1000, help="decisions per length per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    model = RouterModel.load(args.model)
    spec = model.manifest.embedder
    scorer = Scorer(model, build_embedder(spec.kind, spec.max_tokens))
    tokenizer_len = len(BASE.split()) * 1.3
    policy = LearnedPolicy(scorer.score, LearnedRoutingConfig(), ShareThreshold(2000))
    loads = {"large": TierLoad(running=3, waiting=2)}
    queries = {}
    for target_tokens in (16, 64, 256, 512):
        text = (BASE * int(np.ceil(target_tokens / tokenizer_len)))
        queries[target_tokens] = RoutingQuery(text=" ".join(text.split()[: int(target_tokens / 1.3)]))
    for query in queries.values():
        for _ in range(20):
            policy.decide(query, loads)  # warm-up
    # Rounds, lengths interleaved inside each: a burst of noise from a neighbour on this
    # shared machine lands on every length alike, and the median round is reported.
    times: dict[int, list[list[float]]] = {n: [] for n in queries}
    for _ in range(args.rounds):
        for tokens, query in queries.items():
            samples = []
            for _ in range(args.n):
                start = time.perf_counter()
                policy.decide(query, loads)
                samples.append((time.perf_counter() - start) * 1000)
            times[tokens].append(samples)
    rows = []
    for tokens, rounds in times.items():
        p50s = [float(np.percentile(r, 50)) for r in rounds]
        p99s = [float(np.percentile(r, 99)) for r in rounds]
        row = {"prompt_tokens": tokens, "p50_ms": float(np.median(p50s)), "p99_ms": float(np.median(p99s)),
               "p99_ms_per_round": p99s, "n_per_round": args.n}
        rows.append(row)
        print(f"{tokens:>4} tokens: p50 {row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms "
              f"(median of {args.rounds} rounds; p99 per round {', '.join(f'{p:.2f}' for p in p99s)})", flush=True)
    report = {
        "benchmark": "router_decision_latency",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": __import__("os").cpu_count(), "platform": platform.platform()},
        "model": model.manifest.version, "embedder": spec.model_dump(),
        "target": {"p99_ms": 10, "prompt_tokens": 512},
        "results": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "router_latency.json").write_text(json.dumps(report, indent=2))
    print(f"saved {RESULTS / 'router_latency.json'}")


if __name__ == "__main__":
    main()
