"""Queue-aware vs queue-blind routing under a burst that saturates the large tier.

The same burst of `model=auto` requests is sent with the queue shift enabled and
disabled (switched live with `serve deploy` of a new ingress user_config: no replica
restarts), alternating. Prints p50/p95 latency of all requests and the share rerouted
to small; saves load_tests/results/queue_routing.json.

    python load_tests/bench_queue_routing.py [--burst 32] [--rounds 3] [--large-seqs 2] [--large-share 0.75]

The threshold is set so that `--large-share` of the prompt mix scores as "hard" when the
tiers are idle: queue-blind, the burst piles onto the large tier.

The queue config's per-request costs are measured first, as ops would set them: each
tier gets a burst of its own (pinned with `model=small|large`) and its cost is the
elapsed time over the requests it served under that load. Hand-set costs that are off
by the same factor for both tiers still balance them; costs off in different ways
move the queue from one tier to the other (`--large-seconds/--small-seconds` to try).

The deployment stands in for production's separate GPU workers: each tier's engine is
bound to its own core (`cpu_threads_bind`: small on core 0, large on core 1) and the
large tier admits `--large-seqs` sequences at a time (`max_num_seqs`, the capacity a big
model has on its GPUs), so a burst queues on it as it would in production. Sharing both
cores between the tiers instead makes rerouting pointless (moving work between tiers
does not add compute). With 2 sequences at a time a large-tier request costs ~4x a
small-tier one under load (3.2 s vs 0.8 s measured), still a smaller gap than a 70B
model has over a quantized 1.5B; at 4 the two 135M/270M models differ by only ~2x,
less than real pairs of tiers do (`--large-seqs 4` runs that case). The small tier
serves float32 (on CPUs without AVX512-BF16 its int8 path emulates bf16 and is slower
than the large tier, inverting the premise) and
without automatic adapter selection (LoRA doubles its cost on CPU; adapters are not
what this measures).
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
from cluster import Cluster, replica_pids  # noqa: E402

RESULTS = Path(__file__).parent / "results"
PROMPTS = [
    "Hi, where is my order?",
    "How do I reset my password?",
    "Statement 1 | Every integral domain with characteristic 0 is infinite. Statement 2 | Every "
    "integral domain with prime characteristic is finite.\nA. True, True\nB. False, False\n"
    "C. True, False\nD. False, True\nAnswer:",
    "Which of the following is NOT a reason the refund was declined, except when the card expired?",
    "Can I change the shipping address?",
    "Explain the difference between a chargeback and a refund, and when each one applies.",
    "What payment methods do you accept?",
    "Statement 1 | A factor group of a non-Abelian group is non-Abelian. Statement 2 | If K is a "
    "normal subgroup of H and H is a normal subgroup of G, then K is a normal subgroup of G.\n"
    "A. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer:",
]


ADMIN_KEY = "bench-queue-admin"


def settings_args(large_seqs: int) -> dict:
    return {
        "admin": {"api_key": ADMIN_KEY},
        # Domain adapters would double the small tier's cost on CPU (LoRA); this measures routing.
        "adapters": {"auto_select": False},
        "small": {"quantization": None, "dtype": "float32", "cpu_threads_bind": "0"},
        "large": {"cpu_threads_bind": "1", "max_num_seqs": large_seqs},
    }


def routing(queue_enabled: bool, threshold: float, costs: dict[str, float] | None = None) -> dict:
    costs = costs or {"large": 0.5, "small": 0.25}
    return {
        "policy": "learned",
        "learned": {
            "thresholds": {"mode": "probability", "probability": threshold},
            "queue": {"enabled": queue_enabled, "latency_budget_s": 2.0,
                      "seconds_per_queued_request": costs["large"], "must_large_score": 0.5,
                      "small_seconds_per_queued_request": costs["small"]},
        },
    }


def switch(cluster: Cluster, queue_enabled: bool, threshold: float, costs: dict[str, float], timeout_s: float = 60) -> None:
    """`serve deploy` the routing config; return once 8 answers in a row run it."""
    cluster.deploy({"routing": routing(queue_enabled, threshold, costs)})
    deadline, streak = time.monotonic() + timeout_s, 0
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    while streak < 8:
        if time.monotonic() > deadline:
            raise RuntimeError("the routing config was not applied")
        learned = httpx.get(f"{cluster.url}/admin/config", headers=headers, timeout=30).json()["config"]["routing"]["learned"]
        applied = learned["queue"]["enabled"] == queue_enabled and learned["thresholds"]["probability"] == threshold
        streak = streak + 1 if applied else 0
        time.sleep(0.1)


Result = tuple[float, str, str]  # latency s, route reason, tier


async def one(client: httpx.AsyncClient, prompt: str, model: str = "auto") -> Result:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 32, "temperature": 0}
    start = time.perf_counter()
    r = await client.post("/v1/chat/completions", json=body)
    r.raise_for_status()
    return time.perf_counter() - start, r.headers["x-gateway-route-reason"], r.headers["x-gateway-tier"]


async def burst(url: str, size: int, model: str = "auto") -> list[Result]:
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        return await asyncio.gather(*(one(client, PROMPTS[i % len(PROMPTS)], model) for i in range(size)))


def measured_costs(url: str, sizes: dict[str, int]) -> dict[str, float]:
    """Seconds each request adds at a tier under load: a burst pinned to it, elapsed / size."""
    costs = {}
    for tier, size in sizes.items():
        start = time.perf_counter()
        asyncio.run(burst(url, size, tier))
        costs[tier] = round((time.perf_counter() - start) / size, 3)
    return costs


def share_threshold(url: str, large_share: float) -> float:
    """The score cut that sends `large_share` of the prompt mix to large when idle."""
    scores = []
    for p in PROMPTS:
        r = httpx.post(f"{url}/v1/chat/completions", timeout=300, json={
            "model": "auto", "messages": [{"role": "user", "content": p}], "max_tokens": 1})
        scores.append(float(r.headers["x-gateway-route-score"]))
    ordered = sorted(scores, reverse=True)
    return ordered[max(0, round(large_share * len(ordered)) - 1)]


def latency(results: list[Result]) -> dict:
    lat = np.array([r[0] for r in results]) if results else np.zeros(1)
    return {"n": len(results), "p50_s": float(np.percentile(lat, 50)), "p95_s": float(np.percentile(lat, 95))}


def summarise(results: list[Result]) -> dict:
    reasons = [r[1] for r in results]
    return {
        **latency(results),
        "large_share": sum(r[2] == "large" for r in results) / len(results),
        "rerouted_share": sum(r == "learned:queue_shift" for r in reasons) / len(reasons),
        "by_tier": {t: latency([r for r in results if r[2] == t]) for t in ("small", "large")},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--large-seqs", type=int, default=2)
    parser.add_argument("--large-share", type=float, default=0.75, help="of the mix above the threshold")
    parser.add_argument("--port", type=int, default=8012)
    parser.add_argument("--large-seconds", type=float, help="queue.seconds_per_queued_request (default: measured)")
    parser.add_argument("--small-seconds", type=float,
                        help="queue.small_seconds_per_queued_request (default: measured)")
    parser.add_argument("--out", default="queue_routing.json")
    args = parser.parse_args()
    cluster = Cluster(args.port, Path(tempfile.mkdtemp(prefix="bench-queue-")), settings_args(args.large_seqs))
    cluster.start({"routing": routing(False, 0.0)})
    try:
        url = cluster.url
        threshold = share_threshold(url, args.large_share)  # most of the mix is "hard": the burst loads large
        costs = measured_costs(url, {"large": 2 * args.large_seqs, "small": args.burst // 2})
        costs.update({k: v for k, v in (("large", args.large_seconds), ("small", args.small_seconds)) if v is not None})
        engines = {d: replica_pids(d) for d in ("SmallEngine", "LargeEngine", "Ingress")}
        runs: dict[str, list] = {"queue_blind": [], "queue_aware": []}
        for r in range(args.rounds):
            order = [False, True] if r % 2 == 0 else [True, False]
            for aware in order:
                switch(cluster, aware, threshold, costs)
                runs["queue_aware" if aware else "queue_blind"] += asyncio.run(burst(url, args.burst))
        restarted = {d: replica_pids(d) != pids for d, pids in engines.items()}
    finally:
        cluster.stop()
    blind, aware = summarise(runs["queue_blind"]), summarise(runs["queue_aware"])
    report = {
        "benchmark": "queue_aware_routing",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "burst": args.burst, "rounds": args.rounds, "seconds_per_queued_request": costs, "threshold": threshold, "large_share_idle": args.large_share,
        "deployment": {"settings": settings_args(args.large_seqs), "replicas_restarted_by_switches": restarted},
        "queue_blind": blind, "queue_aware": aware,
        "p95_ratio_aware_over_blind": aware["p95_s"] / blind["p95_s"],
        "target": {"p95_ratio": 0.5},
    }
    for name, s in (("queue-blind", blind), ("queue-aware", aware)):
        print(f"{name:12s} p50 {s['p50_s']:6.2f}s p95 {s['p95_s']:6.2f}s large share {s['large_share']:.2f} "
              f"rerouted {s['rerouted_share']:.2f} | p95 small {s['by_tier']['small']['p95_s']:.2f}s "
              f"large {s['by_tier']['large']['p95_s']:.2f}s")
    print(f"per-request cost (s): {costs}")
    print(f"p95 ratio aware/blind {report['p95_ratio_aware_over_blind']:.3f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
