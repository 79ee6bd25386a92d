"""LoRA hot swap under load: latency while swapping vs steady, swap time, failures.

Concurrent clients send `small:refund` requests for the whole run. The run is cut into
alternating windows: in a "swap" window the admin API flips the refund domain between
two versions every `--every` seconds; in a "steady" window nothing changes. Prints
p50/p99 latency per window kind and their ratio, the swap times (admin call until every
small replica has applied the change) and the failed requests (target 0); saves
load_tests/results/lora_swap.json and lora_swap.png.

    python load_tests/bench_lora_swap.py [--clients 8] [--windows 4] [--window-s 15]

The small tier serves float32 here, as in the queue benchmark: on CPUs without
AVX512-BF16 the int8 path emulates bf16 and one 8-way batch takes ~17 s, too few
requests per window for a p99. The swap path (registry, probe, sync, vLLM LoRA cache) is
the same for every dtype.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

import httpx
import numpy as np

from adapters.reissue import reissue


RESULTS = Path(__file__).parent / "results"
KEY = "bench-admin-key"
QUESTION = "How can I get a refund for my order?"


def deploy(port: int, registry: Path, small_replicas: int) -> None:
    import ray
    from ray import serve

    from deployments.app import build
    from deployments.settings import Settings

    ray.init(namespace="bench-lora", include_dashboard=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    settings = Settings(
        admin={"api_key": KEY}, adapters={"registry_dir": registry},
        small={"num_replicas": small_replicas, "quantization": None, "dtype": "float32"},
    )
    serve.run(build(settings), name=settings.app_name, route_prefix="/")


def active(url: str, domain: str) -> str:
    state = httpx.get(f"{url}/admin/adapters", headers={"authorization": f"Bearer {KEY}"}).json()
    return state["domains"][domain]["active"]


async def client_loop(url: str, stop: asyncio.Event, log: list[tuple[float, float, int]], t0: float) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                # Ungrounded: refund is a support domain, grounded by default, and a ~600-token
                # context per request would measure prefill and retrieval, not the swap.
                response = await http.post("/v1/chat/completions", json={
                    "model": "small:refund", "max_tokens": 16, "temperature": 0,
                    "messages": [{"role": "user", "content": QUESTION}], "grounding": False,
                })
                status = response.status_code
            except httpx.HTTPError:
                status = -1
            log.append((started - t0, time.perf_counter() - started, status))


async def run(url: str, versions: tuple[str, str], args: argparse.Namespace) -> dict:
    log: list[tuple[float, float, int]] = []
    windows: list[tuple[str, float, float]] = []
    swaps: list[float] = []
    replicas: set[int] = set()
    stop = asyncio.Event()
    t0 = time.perf_counter()
    clients = [asyncio.create_task(client_loop(url, stop, log, t0)) for _ in range(args.clients)]
    await asyncio.sleep(3.0)  # warm-up, not counted
    async with httpx.AsyncClient(base_url=url, timeout=120, headers={"authorization": f"Bearer {KEY}"}) as ops:
        flip = 0
        for w in range(args.windows):
            kind = "swap" if w % 2 == 0 else "steady"
            start = time.perf_counter() - t0
            while time.perf_counter() - t0 - start < args.window_s:
                if kind == "swap":
                    flip ^= 1
                    response = await ops.post("/admin/adapters/refund/activate", json={"version": versions[flip]})
                    response.raise_for_status()
                    body = response.json()
                    assert body["converged"], body
                    swaps.append(body["swap_seconds"])
                    replicas.add(body["replicas"])
                await asyncio.sleep(args.every)
            windows.append((kind, start, time.perf_counter() - t0))
    stop.set()
    await asyncio.gather(*clients)
    return {"log": log, "windows": windows, "swaps": swaps, "replicas": sorted(replicas)}


def summarise(raw: dict) -> dict:
    def in_kind(kind: str) -> list[tuple[float, float, int]]:
        spans = [(a, b) for k, a, b in raw["windows"] if k == kind]
        return [r for r in raw["log"] if any(a <= r[0] < b for a, b in spans)]

    out = {}
    for kind in ("steady", "swap"):
        rows = in_kind(kind)
        ok = sorted(latency for _, latency, status in rows if status == 200)
        out[kind] = {
            "requests": len(rows), "succeeded": len(ok), "failed": len(rows) - len(ok),
            "p50_s": float(np.percentile(ok, 50)) if ok else None,
            "p99_s": float(np.percentile(ok, 99)) if ok else None,
        }
    swaps = sorted(raw["swaps"])
    out["swaps"] = {
        "count": len(swaps), "p50_s": float(np.percentile(swaps, 50)), "max_s": float(swaps[-1]),
    }
    out["replicas_converged"] = raw["replicas"]
    out["failed_total"] = sum(1 for *_, status in raw["log"] if status != 200)
    out["requests_total"] = len(raw["log"])
    if not (out["swap"]["p50_s"] and out["steady"]["p50_s"]):
        raise SystemExit(f"no completed requests in a window kind: {out}; use longer --window-s")
    out["p50_ratio_swap_over_steady"] = out["swap"]["p50_s"] / out["steady"]["p50_s"]
    out["p99_ratio_swap_over_steady"] = out["swap"]["p99_s"] / out["steady"]["p99_s"]
    return out


def plot(raw: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    for kind, start, end in raw["windows"]:
        ax.axvspan(start, end, color="tab:orange" if kind == "swap" else "tab:green", alpha=0.12)
    ok = [(t, latency) for t, latency, status in raw["log"] if status == 200]
    bad = [(t, latency) for t, latency, status in raw["log"] if status != 200]
    ax.scatter(*zip(*ok), s=6, label="200")
    if bad:
        ax.scatter(*zip(*bad), s=12, color="red", label="failed")
    ax.set_xlabel("time (s); orange = swapping every few seconds, green = steady")
    ax.set_ylabel("request latency (s)")
    ax.set_title("small:refund under LoRA hot swaps")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--window-s", type=float, default=15.0)
    parser.add_argument("--every", type=float, default=2.0, help="Seconds between swaps in a swap window")
    parser.add_argument("--port", type=int, default=8013)
    parser.add_argument("--small-replicas", type=int, default=2,
                        help="Small-tier replicas: every swap must converge on all of them")
    args = parser.parse_args()
    from deployments.settings import Settings

    scratch = Path(tempfile.mkdtemp(prefix="bench-lora-"))
    registry = scratch / "registry"
    shutil.copytree(Settings().adapters.registry_dir, registry, ignore=shutil.ignore_patterns(".lock"))
    url = f"http://127.0.0.1:{args.port}"
    deploy(args.port, registry, args.small_replicas)
    first = active(url, "refund")
    second = reissue(registry, first, f"refund-v70-{date.today()}", scratch)
    load = httpx.post(f"{url}/admin/adapters", json={"path": str(second)},
                      headers={"authorization": f"Bearer {KEY}"}, timeout=120)
    load.raise_for_status()
    raw = asyncio.run(run(url, (first, second.name), args))
    summary = summarise(raw)
    report = {
        "benchmark": "lora_swap",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "clients": args.clients, "window_s": args.window_s, "swap_every_s": args.every,
        **summary,
        "target": {"failed_total": 0},
    }
    for kind in ("steady", "swap"):
        s = summary[kind]
        print(f"{kind:7s} requests {s['requests']:4d} failed {s['failed']:2d} "
              f"p50 {s['p50_s']:.3f}s p99 {s['p99_s']:.3f}s")
    print(f"swaps {summary['swaps']['count']}: p50 {summary['swaps']['p50_s']:.3f}s max {summary['swaps']['max_s']:.3f}s")
    print(f"p50 ratio swap/steady {summary['p50_ratio_swap_over_steady']:.3f}  "
          f"p99 ratio {summary['p99_ratio_swap_over_steady']:.3f}  failed {summary['failed_total']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lora_swap.json").write_text(__import__("json").dumps(report, indent=2))
    plot(raw, RESULTS / "lora_swap.png")
    from ray import serve

    serve.shutdown()
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
