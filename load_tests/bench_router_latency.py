"""Routing decision latency: the learned router's whole decision (embedding, kNN
history, stacked models, LightGBM heads, calibration, threshold) for one query at a
time, at prompt lengths up to 512 tokens. Saves load_tests/results/router_latency.json.

    python load_tests/bench_router_latency.py [--model DIR] [--n 300]
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
    from gateway.settings import Settings
    from router.decision import RoutingQuery, TierLoad
    from router.embedding import build_embedder
    from router.learned import LearnedPolicy, LearnedRoutingConfig
    from router.model import RouterModel, Scorer
    from router.thresholds import ShareThreshold

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=Settings().router.model_dir)
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()

    model = RouterModel.load(args.model)
    spec = model.manifest.embedder
    scorer = Scorer(model, build_embedder(spec.kind, spec.max_tokens))
    tokenizer_len = len(BASE.split()) * 1.3
    policy = LearnedPolicy(scorer.score, LearnedRoutingConfig(), ShareThreshold(2000))
    loads = {"large": TierLoad(running=3, waiting=2)}
    rows = []
    for target_tokens in (16, 64, 256, 512):
        text = (BASE * int(np.ceil(target_tokens / tokenizer_len)))
        text = " ".join(text.split()[: int(target_tokens / 1.3)])
        query = RoutingQuery(text=text)
        for _ in range(20):
            policy.decide(query, loads)  # warm-up
        times = []
        for _ in range(args.n):
            start = time.perf_counter()
            policy.decide(query, loads)
            times.append((time.perf_counter() - start) * 1000)
        row = {"prompt_tokens": target_tokens, "p50_ms": float(np.percentile(times, 50)),
               "p99_ms": float(np.percentile(times, 99)), "n": args.n}
        rows.append(row)
        print(f"{target_tokens:>4} tokens: p50 {row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms", flush=True)
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
