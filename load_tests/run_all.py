"""Every benchmark of the project, one after the other, then one summary table.

    python load_tests/run_all.py [--only name,name] [--skip name] [--table-only]

Each benchmark is its own script (it starts and stops what it needs: an in-process
engine, or the app via `ray start` + `serve deploy`; traffic only to 127.0.0.1), bounded
by a timeout here, and writes load_tests/results/<name>.json. This runner adds a PNG for
the benchmarks whose script draws none, and writes results/summary.json and summary.md
(the table the README shows). Run it alone on the machine: the benchmarks own Ray.
`--table-only` rebuilds the table from the JSON already there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


@dataclass(frozen=True)
class Benchmark:
    name: str  # results/<name>.json
    script: str
    args: tuple[str, ...]
    timeout_s: int
    headline: Callable[[dict[str, Any]], tuple[str, str, str]]  # (measure, value, target)


def _overhead(d: dict[str, Any]) -> tuple[str, str, str]:
    c1 = next(s for s in d["scenarios"] if s["concurrency"] == 1 and s["max_tokens"] == 1)
    c16 = [s for s in d["scenarios"] if s["concurrency"] == 16]
    ratio = min(s["throughput_ratio"] for s in c16) if c16 else float("nan")
    return ("added p50 (c=1, 1 token) · throughput ratio c=16",
            f"{c1['added_p50_ms']:+.0f} ms · {ratio:.3f}", "≤ 5 ms · ≥ 0.90")


def _router(d: dict[str, Any]) -> tuple[str, str, str]:
    row = next(r for r in d["results"] if r["prompt_tokens"] == 512)
    return ("decision p50 / p99 at 512 tokens", f"{row['p50_ms']:.1f} / {row['p99_ms']:.1f} ms", "p99 ≤ 10 ms")


def _queue(d: dict[str, Any]) -> tuple[str, str, str]:
    return ("p95 aware / blind (share rerouted)",
            f"{d['queue_aware']['p95_s']:.1f} / {d['queue_blind']['p95_s']:.1f} s = "
            f"{d['p95_ratio_aware_over_blind']:.3f} ({d['queue_aware']['rerouted_share']:.0%})", "≤ 0.5")


def _shadow(d: dict[str, Any]) -> tuple[str, str, str]:
    r = d["ratio_to_0pct"]
    return ("primary p99 ratio, shadow 10 % / 100 % vs 0 %", f"{r['10%']['p99']:.3f} / {r['100%']['p99']:.3f}",
            "10 %: ≤ 1.10")


def _lora(d: dict[str, Any]) -> tuple[str, str, str]:
    return ("p99 swapping / steady · failed · swap p50",
            f"{d['p99_ratio_swap_over_steady']:.3f} · {d['failed_total']} · {d['swaps']['p50_s']:.1f} s", "0 failed")


def _rerank(d: dict[str, Any]) -> tuple[str, str, str]:
    bound = d.get("best_possible_ratio")
    hidden = f" (hiding every rerank: {bound:.3f})" if bound is not None else ""
    return ("p50 async upgrade / sync rerank", f"{d['p50_ratio_async_over_sync']:.3f}{hidden}", "≤ 0.8")


def _gateway_only(d: dict[str, Any]) -> tuple[str, str, str]:
    rows = {r["name"]: r for r in d["rows"]}
    nan = {"added_p50_ms": float("nan"), "max_rps": float("nan")}
    remote, lite, pinned, ray = (rows.get(k, nan) for k in ("d", "c", "b_small", "e"))
    return ("added p50 c=1: remote tier / LiteLLM · pinned − Ray floor · max req/s remote / LiteLLM",
            f"{remote['added_p50_ms']:.1f} / {lite['added_p50_ms']:.1f} ms · "
            f"{pinned['added_p50_ms'] - ray['added_p50_ms']:+.1f} ms · {remote['max_rps']:.0f} / {lite['max_rps']:.0f}",
            "≤ LiteLLM · ≤ +1 ms · ≥ LiteLLM")


def _keyed(d: dict[str, Any]) -> tuple[str, str, str]:
    return ("added by a key with rpm/tpm limits, p50 / p99 (median of rounds)",
            f"{d['added_p50_ms_median']:+.2f} / {d['added_p99_ms_median']:+.2f} ms", "≈ 0 (no remote call)")


def _auto_cost(d: dict[str, Any]) -> tuple[str, str, str]:
    small, large = d["auto_minus_small_p50_ms"], d["auto_minus_large_p50_ms"]
    return ("auto − pinned small / large, p50 (median of rounds, spread)",
            f"{small['median']:+.2f} ({small['min']:+.2f} to {small['max']:+.2f}) / "
            f"{large['median']:+.2f} ({large['min']:+.2f} to {large['max']:+.2f}) ms", "≤ +1 ms")


BENCHMARKS = [
    # --quick (fewer rounds, bounded for the suite) writes its own file: the table must read that one.
    Benchmark("gateway_overhead_quick", "bench_overhead.py", ("--quick",), 1800, _overhead),
    Benchmark("router_latency", "bench_router_latency.py", (), 900, _router),
    Benchmark("queue_routing", "bench_queue_routing.py", ("--burst", "32", "--rounds", "3"), 2400, _queue),
    Benchmark("shadow_impact", "bench_shadow.py", (), 2400, _shadow),
    Benchmark("lora_swap", "bench_lora_swap.py", (), 1800, _lora),
    Benchmark("rerank_async", "bench_rerank.py", (), 1800, _rerank),
    # Installs LiteLLM into .cache/bench-litellm-venv on its first run (up to 15 min of that bound).
    Benchmark("gateway_only", "bench_gateway_only.py", (), 2700, _gateway_only),
    Benchmark("keyed_limits", "bench_keyed_limits.py", (), 900, _keyed),
    Benchmark("auto_cost", "bench_auto_cost.py", (), 900, _auto_cost),
]


def run(bench: Benchmark) -> str:
    script = HERE / bench.script
    if not script.exists():
        return "not built yet"
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, str(script), *bench.args], timeout=bench.timeout_s)
    except subprocess.TimeoutExpired:
        subprocess.run([str(Path(sys.executable).parent / "ray"), "stop"], check=False, capture_output=True)
        return f"timed out after {bench.timeout_s} s"
    status = "ok" if done.returncode == 0 else f"exit {done.returncode}"
    return f"{status} ({time.monotonic() - started:.0f} s)"


def plot_router(d: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    tokens = [r["prompt_tokens"] for r in d["results"]]
    ax.plot(tokens, [r["p50_ms"] for r in d["results"]], marker="o", label="p50")
    ax.plot(tokens, [r["p99_ms"] for r in d["results"]], marker="o", label="p99")
    ax.axhline(10, color="grey", linestyle="--", label="target p99")
    ax.set(xlabel="prompt tokens", ylabel="ms", title="Routing decision latency")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_queue(d: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    names = ["queue_blind", "queue_aware"]
    for i, key in enumerate(("p50_s", "p95_s")):
        ax.bar([x + i * 0.4 for x in range(2)], [d[n][key] for n in names], width=0.4, label=key[:-2])
    ax.set_xticks([0.2, 1.2], ["queue-blind", "queue-aware"])
    ax.set(ylabel="latency (s)", title=f"Burst of {d['burst']} auto requests, {d['rounds']} rounds")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


PLOTS = {"router_latency": plot_router, "queue_routing": plot_queue}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def table(statuses: dict[str, str]) -> tuple[list[dict[str, str]], str]:
    rows = []
    for bench in BENCHMARKS:
        path = RESULTS / f"{bench.name}.json"
        row = {"benchmark": bench.name, "run": statuses.get(bench.name, "saved result"), "measure": "", "value": "",
               "target": "", "date": ""}
        if path.exists():
            data = json.loads(path.read_text())
            row["measure"], row["value"], row["target"] = bench.headline(data)
            row["date"] = data.get("date", "")[:10]
            if bench.name in PLOTS:
                PLOTS[bench.name](data, RESULTS / f"{bench.name}.png")
        rows.append(row)
    header = "| benchmark | measure | value | target | date | this run |\n|---|---|---|---|---|---|\n"
    body = "".join(f"| {r['benchmark']} | {r['measure']} | {r['value']} | {r['target']} | {r['date']} | {r['run']} |\n"
                   for r in rows)
    return rows, header + body


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--skip", default="", help="comma-separated benchmark names")
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    only, skip = set(filter(None, args.only.split(","))), set(filter(None, args.skip.split(",")))
    statuses: dict[str, str] = {}
    if not args.table_only:
        for bench in BENCHMARKS:
            if (only and bench.name not in only) or bench.name in skip:
                continue
            print(f"== {bench.name}: {bench.script} {' '.join(bench.args)}", flush=True)
            statuses[bench.name] = run(bench)
    rows, markdown = table(statuses)
    machine = f"{os.cpu_count()} CPUs, {platform.platform()}"
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    (RESULTS / "summary.json").write_text(json.dumps({"date": stamp, "machine": machine, "rows": rows}, indent=2))
    (RESULTS / "summary.md").write_text(f"Benchmarks, {stamp}, {machine}\n\n{markdown}")
    print(f"\nBenchmarks ({machine})\n\n{markdown}")
    if any(not s.startswith("ok") for s in statuses.values() if s != "not built yet"):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
