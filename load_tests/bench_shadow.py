"""Primary latency with shadow mirroring at 0 %, 10 % and 100 %, side by side.

Steady closed-loop traffic to the small tier; a rule mirrors that traffic to the large
tier at the phase's sample rate (switched live with `serve deploy` of the ingress
user_config: no replica restarts). Phases alternate over rounds so drifts of this noisy
machine land on every rate; between phases the shadow backlog is drained so one phase's
shadow work does not bill the next. Prints p50/p99 per rate and the ratios to 0 %; saves
load_tests/results/shadow_impact.json and .png.

    python load_tests/bench_shadow.py [--phase-s 45] [--rounds 2] [--concurrency 2]

Deployment as in bench_queue_routing.py: each tier's vLLM on its own core, standing in
for production's separate GPU workers; the small tier in float32, no adapter selection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster import Cluster, replica_pids, scrape  # noqa: E402
from plots import latency_cdf  # noqa: E402

RESULTS = Path(__file__).parent / "results"
ADMIN_KEY = "bench-shadow-admin"
RATES = (0.0, 0.1, 1.0)
PROMPTS = [
    "Where is my order? It was supposed to arrive yesterday.",
    "How do I reset my password?",
    "Can I get a refund for a damaged item?",
    "I was charged twice for the same order.",
    "How can I change my delivery address?",
    "Do you ship internationally?",
    "How do I cancel my subscription?",
    "The discount code does not work at checkout.",
]


def settings_args(store: Path) -> dict:
    return {
        "admin": {"api_key": ADMIN_KEY},
        "adapters": {"auto_select": False},
        "small": {"quantization": None, "dtype": "float32", "cpu_threads_bind": "0"},
        "large": {"cpu_threads_bind": "1"},
        "shadow": {"store": str(store)},
    }


def shadow_config(rate: float, max_tokens: int) -> dict:
    return {"rules": [{"tier": "small", "target": "large", "sample_rate": rate}],
            "queue_size": 16, "concurrency": 1, "max_tokens": max_tokens}


def switch(cluster: Cluster, rate: float, max_tokens: int, timeout_s: float = 60) -> None:
    cluster.deploy({"shadow": shadow_config(rate, max_tokens)})
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        view = httpx.get(f"{cluster.url}/admin/config", headers=headers, timeout=30).json()
        if view["config"]["shadow"]["rules"][0]["sample_rate"] == rate:
            return
        time.sleep(0.2)
    raise RuntimeError(f"shadow rate {rate} was not applied")


def shadow_counts(url: str) -> dict[str, float]:
    """The shadow request and drop counters, keyed as exported (`name{label="value",...}`)."""
    counts: dict[str, float] = {}
    for sample in scrape(url):
        if sample.name in ("gateway_shadow_requests_total", "gateway_shadow_dropped_total"):
            labels = ",".join(f'{k}="{v}"' for k, v in sample.labels.items())
            counts[f"{sample.name}{{{labels}}}"] = sample.value
    return counts


def drain(url: str, quiet_s: float = 4.0, timeout_s: float = 180.0) -> None:
    """Until the shadow counters stop moving: the backlog of this phase is done."""
    last, still_since = shadow_counts(url), time.monotonic()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and time.monotonic() - still_since < quiet_s:
        time.sleep(1.0)
        now = shadow_counts(url)
        if now != last:
            last, still_since = now, time.monotonic()


async def client_loop(client: httpx.AsyncClient, stop_at: float, offset: int, max_tokens: int) -> list[float]:
    latencies, i = [], offset
    while time.monotonic() < stop_at:
        body = {"model": "small", "messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
                "max_tokens": max_tokens, "temperature": 0}
        start = time.perf_counter()
        r = await client.post("/v1/chat/completions", json=body)
        r.raise_for_status()
        latencies.append(time.perf_counter() - start)
        i += 1
    return latencies


async def phase(url: str, seconds: float, concurrency: int, max_tokens: int) -> list[float]:
    stop_at = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        runs = await asyncio.gather(*(client_loop(client, stop_at, k * 3, max_tokens) for k in range(concurrency)))
    return [x for run in runs for x in run]


def summarise(latencies: list[float]) -> dict:
    lat = np.array(latencies)
    return {"n": len(lat), "p50_s": float(np.percentile(lat, 50)), "p99_s": float(np.percentile(lat, 99))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--phase-s", type=float, default=45)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--port", type=int, default=8013)
    parser.add_argument("--out", default="shadow_impact", help="results/<out>.json and .png")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-shadow-"))
    cluster = Cluster(args.port, scratch, settings_args(scratch / "shadow.sqlite"))
    cluster.start({"shadow": shadow_config(0.0, args.max_tokens)})
    samples: dict[float, list[float]] = {rate: [] for rate in RATES}
    mirrored: dict[float, dict[str, float]] = {}
    try:
        asyncio.run(phase(cluster.url, 10, args.concurrency, args.max_tokens))  # warm-up
        replicas = {d: replica_pids(d) for d in ("SmallEngine", "LargeEngine", "Ingress")}
        for r in range(args.rounds):
            for rate in RATES if r % 2 == 0 else tuple(reversed(RATES)):
                switch(cluster, rate, args.max_tokens)
                before = shadow_counts(cluster.url)
                samples[rate] += asyncio.run(phase(cluster.url, args.phase_s, args.concurrency, args.max_tokens))
                drain(cluster.url)
                after = shadow_counts(cluster.url)
                for key, value in after.items():
                    mirrored.setdefault(rate, {})[key] = mirrored.get(rate, {}).get(key, 0.0) + value - before.get(key, 0.0)
                print(f"round {r} rate {rate:.0%}: {len(samples[rate])} primaries so far", flush=True)
        restarted = {d: replica_pids(d) != pids for d, pids in replicas.items()}
    finally:
        cluster.stop()
    stats = {f"{rate:.0%}": summarise(lat) for rate, lat in samples.items()}
    base = stats["0%"]
    ratios = {k: {"p50": s["p50_s"] / base["p50_s"], "p99": s["p99_s"] / base["p99_s"]} for k, s in stats.items()}
    report = {
        "benchmark": "shadow_impact",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "phase_s": args.phase_s, "rounds": args.rounds, "concurrency": args.concurrency,
        "max_tokens": args.max_tokens,
        "deployment": {"settings": settings_args(Path("<scratch>/shadow.sqlite")),
                       "replicas_restarted_by_switches": restarted},
        "primary": stats, "ratio_to_0pct": ratios,
        "shadow_counters": {f"{rate:.0%}": counts for rate, counts in mirrored.items()},
        "target": {"p99_ratio_10pct_over_0pct": 1.10},
    }
    for key, s in stats.items():
        print(f"shadow {key:>4}: n {s['n']:4d}  p50 {s['p50_s'] * 1000:7.0f} ms  p99 {s['p99_s'] * 1000:7.0f} ms  "
              f"p50 ratio {ratios[key]['p50']:.3f}  p99 ratio {ratios[key]['p99']:.3f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(report, indent=2))
    latency_cdf({f"shadow {rate:.0%}": lat for rate, lat in samples.items()}, RESULTS / f"{args.out}.png",
                "Primary latency CDF vs shadow sample rate", "primary latency (s)")
    print(f"saved {RESULTS / args.out}.json")


if __name__ == "__main__":
    main()
