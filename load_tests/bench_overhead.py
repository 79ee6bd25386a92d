"""Gateway overhead: the same requests (a) through the gateway over HTTP and (b) straight
to the same vLLM engine replica through its Ray Serve handle, side by side in one run.

Rounds alternate between the two paths (and which goes first) so machine noise hits
both alike. Prints p50/p99 added latency and the throughput ratio per scenario, saves
JSON (and a PNG) under load_tests/results/.

    python load_tests/bench_overhead.py            # full run (~12 min on 2 cores)
    python load_tests/bench_overhead.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx

RESULTS = Path(__file__).parent / "results"
PROMPTS = [
    "How do I reset my password?",
    "My order has not arrived yet, what can I do?",
    "Can I change the shipping address of an order?",
    "How do I cancel my subscription?",
    "Where can I download my invoice?",
    "What payment methods do you accept?",
    "How long does a refund take?",
    "I was charged twice for the same order.",
]


@dataclass
class PathStats:
    latencies_s: list[float] = field(default_factory=list)
    tokens: int = 0
    busy_s: float = 0.0  # wall time spent in this path's rounds

    def summary(self) -> dict[str, float]:
        lat = sorted(self.latencies_s)
        return {
            "n": len(lat),
            "p50_ms": 1000 * percentile(lat, 50),
            "p99_ms": 1000 * percentile(lat, 99),
            "tokens_per_s": self.tokens / self.busy_s if self.busy_s else 0.0,
        }


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


class GatewayPath:
    name = "gateway"

    def __init__(self, url: str) -> None:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        self._client = httpx.AsyncClient(base_url=url, timeout=300, limits=limits)

    async def one(self, prompt: str, max_tokens: int) -> int:
        body = {"model": "small", "messages": [{"role": "user", "content": prompt}],
                "max_tokens": max_tokens, "temperature": 0}
        r = await self._client.post("/v1/chat/completions", json=body)
        r.raise_for_status()
        return r.json()["usage"]["completion_tokens"]


class DirectPath:
    name = "direct"

    def __init__(self, handle) -> None:  # a DeploymentHandle to the small engine
        self._handle = handle

    async def one(self, prompt: str, max_tokens: int) -> int:
        from engines.types import ChatTurn, GenerationRequest, SamplingSpec

        request = GenerationRequest(
            request_id=uuid.uuid4().hex,
            messages=[ChatTurn(role="user", content=prompt)],
            sampling=SamplingSpec(max_tokens=max_tokens, temperature=0),
        )
        result = await self._handle.generate.remote(request)
        return result.usage.completion_tokens


async def timed(path, prompt: str, max_tokens: int) -> tuple[float, int]:
    start = time.perf_counter()
    tokens = await path.one(prompt, max_tokens)
    return time.perf_counter() - start, tokens


async def run_round(path, stats: PathStats, concurrency: int, max_tokens: int, offset: int) -> None:
    prompts = [PROMPTS[(offset + i) % len(PROMPTS)] for i in range(concurrency)]
    start = time.perf_counter()
    results = await asyncio.gather(*(timed(path, p, max_tokens) for p in prompts))
    stats.busy_s += time.perf_counter() - start
    for latency, tokens in results:
        stats.latencies_s.append(latency)
        stats.tokens += tokens


async def scenario(paths, concurrency: int, max_tokens: int, rounds: int) -> dict:
    stats = {p.name: PathStats() for p in paths}
    for p in paths:  # warm-up, not recorded
        await run_round(p, PathStats(), concurrency, max_tokens, 0)
    for r in range(rounds):
        order = paths if r % 2 == 0 else paths[::-1]
        for p in order:
            await run_round(p, stats[p.name], concurrency, max_tokens, r)
    gw, direct = stats["gateway"].summary(), stats["direct"].summary()
    return {
        "concurrency": concurrency,
        "max_tokens": max_tokens,
        "gateway": gw,
        "direct": direct,
        "added_p50_ms": gw["p50_ms"] - direct["p50_ms"],
        "added_p99_ms": gw["p99_ms"] - direct["p99_ms"],
        "throughput_ratio": gw["tokens_per_s"] / direct["tokens_per_s"] if direct["tokens_per_s"] else None,
    }


def rounds_for(concurrency: int, max_tokens: int, quick: bool) -> int:
    if quick:
        return 2
    if concurrency == 1:
        return 30 if max_tokens == 1 else 8
    return 6 if max_tokens == 1 else 3


def start_gateway(port: int):
    import ray
    from ray import serve

    from deployments.app import DEPLOYMENT_NAMES, build
    from deployments.settings import Settings

    settings = Settings()
    ray.init(namespace="bench", include_dashboard=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build(settings), name=settings.app_name, route_prefix="/")
    return serve.get_deployment_handle(DEPLOYMENT_NAMES["small"], app_name=settings.app_name)


def plot(results: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"c={r['concurrency']}\nmax_tokens={r['max_tokens']}" for r in results]
    x = range(len(results))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key in zip(axes, ("p50_ms", "p99_ms")):
        ax.bar([i - 0.2 for i in x], [r["direct"][key] for r in results], 0.4, label="direct engine")
        ax.bar([i + 0.2 for i in x], [r["gateway"][key] for r in results], 0.4, label="gateway")
        ax.set_xticks(list(x), labels)
        ax.set_yscale("log")
        ax.set_ylabel(f"{key.split('_')[0]} latency (ms)")
        ax.legend()
    fig.suptitle("Gateway vs direct engine (same vLLM replica)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


async def main_async(args: argparse.Namespace, handle) -> dict:
    paths = [GatewayPath(f"http://127.0.0.1:{args.port}"), DirectPath(handle)]
    results = []
    for concurrency in (1, 16):
        for max_tokens in (1, 64):
            rounds = rounds_for(concurrency, max_tokens, args.quick)
            res = await scenario(paths, concurrency, max_tokens, rounds)
            results.append(res)
            print(
                f"c={concurrency:<3} max_tokens={max_tokens:<3} "
                f"direct p50={res['direct']['p50_ms']:8.1f}ms p99={res['direct']['p99_ms']:8.1f}ms | "
                f"gateway p50={res['gateway']['p50_ms']:8.1f}ms p99={res['gateway']['p99_ms']:8.1f}ms | "
                f"added p50={res['added_p50_ms']:+6.1f}ms p99={res['added_p99_ms']:+6.1f}ms | "
                f"throughput ratio={res['throughput_ratio']:.3f}",
                flush=True,
            )
    return {
        "benchmark": "gateway_overhead",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": __import__("os").cpu_count(), "platform": platform.platform()},
        "method": "alternating rounds; direct = Ray Serve handle to the same small-tier vLLM replica",
        "targets": {"added_p50_ms": 5, "added_p99_ms": 15, "throughput_ratio_c16": 0.9},
        "scenarios": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--port", type=int, default=8011)
    args = parser.parse_args()
    handle = start_gateway(args.port)  # serve.run must not run inside an event loop
    report = asyncio.run(main_async(args, handle))
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "gateway_overhead" + ("_quick" if args.quick else "")
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2))
    plot(report["scenarios"], RESULTS / f"{name}.png")
    print(f"saved {RESULTS / name}.json and .png")


if __name__ == "__main__":
    main()
