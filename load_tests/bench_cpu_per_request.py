"""CPU per request: the machine's CPU time (every process but the load generator, from /proc)
per completed request, for bench_gateway_only.py's rows (b) `small` and (e) Ray's floor (and
on request (d) and (f)), under the same closed loop, the rows taking turns round after round.
Saves load_tests/results/cpu_per_request.json.

    python load_tests/bench_cpu_per_request.py [--rows b,e] [--rounds 2] [--concurrency 4]

On a 2-core machine a row's latency moves by milliseconds from one minute to the next (its
p50 over (a) moved 5.5 to 8.6 ms between runs for the same code); the CPU a request takes moves
far less, and says whether a row's code sits at Ray's floor: (b) and (e) have the same shape
(ingress → a replica through a handle), (d) and (f) too (ingress → an upstream over HTTP).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import bench_gateway_only as bench  # noqa: E402
from host import machine  # noqa: E402

RESULTS = HERE / "results"
MODEL = {"b": "small", "e": "m", "d": "large", "f": "m"}  # as bench_gateway_only.py asks each row
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks() -> dict[int, tuple[str, int]]:
    """Every process's (name, user + system ticks)."""
    seen = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        seen[int(entry)] = (_group(command), int(fields[11]) + int(fields[12]))
    return seen


def _group(command: str) -> str:
    if command.startswith("ray::ServeReplica:"):
        return command.split()[0].removeprefix("ray::ServeReplica:")  # app:Deployment
    if "haproxy" in command:
        return "haproxy"
    if "mock_openai_server" in command:
        return "mock server"
    return "ray and the rest" if "ray" in command else "other"


@contextmanager
def serving(row: str, scratch: Path) -> Iterator[str]:
    mock = argparse.Namespace(ttft_s=0.0, itl_s=0.0, tokens=8, slots=256)
    mock_port, port = bench.free_port(), bench.free_port()
    url = f"http://127.0.0.1:{port}"
    with bench.running(bench.mock_server(mock, mock_port, scratch), f"http://127.0.0.1:{mock_port}", "m", 60):
        if row in ("b", "d"):
            service = bench.gateway("gateway", mock, port, mock_port, row == "d", True, False, scratch)
        else:
            forward = f"http://127.0.0.1:{mock_port}/v1" if row == "f" else None
            service = bench.trivial_app(mock, port, True, False, scratch, forward)
        with bench.running(service, url, MODEL[row], 300):
            yield url


async def measure(url: str, model: str, concurrency: int, seconds: float) -> dict[str, float]:
    load = bench.LoadGenerator(url, model, 8)
    try:
        await load.sequential(200, False)  # warm
        before = cpu_ticks()
        level = await load.closed_loop(concurrency, seconds, False)
        after = cpu_ticks()
    finally:
        await load.close()
    mine = os.getpid()
    # The closed loop counts completions in its last 80 %; CPU is read over all of it.
    requests = level.completed / 0.8
    per_group: dict[str, float] = {}
    for pid, (group, ticks) in after.items():
        if pid != mine and pid in before:
            per_group[group] = per_group.get(group, 0.0) + (ticks - before[pid][1]) / TICKS * 1000 / requests
    return {"rate": level.completed / (0.8 * seconds), "cpu_ms_per_request": sum(per_group.values()),
            **{f"cpu_ms:{group}": round(ms, 4) for group, ms in per_group.items() if ms >= 0.005}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="b,e", help="of b, e, d, f")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=RESULTS / "cpu_per_request.json")
    args = parser.parse_args()
    rows = args.rows.split(",")
    started = datetime.now(timezone.utc)
    readings: dict[str, list[dict[str, float]]] = {row: [] for row in rows}
    for number in range(args.rounds):
        for row in rows:
            with tempfile.TemporaryDirectory(prefix=f"bench-cpu-{row}-") as scratch:
                with serving(row, Path(scratch)) as url:
                    reading = asyncio.run(measure(url, MODEL[row], args.concurrency, args.seconds))
            readings[row].append(reading)
            print(f"  round {number} ({row}): {reading['rate']:.0f} req/s, "
                  f"{reading['cpu_ms_per_request']:.3f} ms of CPU a request", flush=True)
    medians = {row: {key: statistics.median(r["cpu_ms_per_request" if key == "cpu" else "rate"] for r in rs)
                     for key in ("cpu", "rate")} for row, rs in readings.items()}
    result = {
        "date": started.isoformat(timespec="seconds"), "machine": machine(),
        "config": {"rows": rows, "rounds": args.rounds, "concurrency": args.concurrency, "seconds": args.seconds},
        "median_cpu_ms_per_request": {row: m["cpu"] for row, m in medians.items()},
        "median_rate": {row: m["rate"] for row, m in medians.items()},
        "rounds": readings,
    }
    for mine, floor in (("b", "e"), ("d", "f")):
        if mine in medians and floor in medians:
            result[f"{mine}_over_{floor}_cpu"] = medians[mine]["cpu"] / medians[floor]["cpu"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for row, m in medians.items():
        print(f"({row}) {m['cpu']:.3f} ms of CPU a request, {m['rate']:.0f} req/s (medians of {args.rounds})")
    for key in ("b_over_e_cpu", "d_over_f_cpu"):
        if key in result:
            print(f"{key}: {result[key]:.2f}x")
    print(args.out)


if __name__ == "__main__":
    main()
