"""What a key's rate limits add to a request: the gateway of bench_gateway_only.py's row (b)
(mock tiers, HAProxy, the default settings) with a key store holding one key with rpm and
tpm limits far above the load. Sequential `model=small` requests, keyed and anonymous,
interleaved in rounds on the same gateway; the added p50/p99 is keyed minus anonymous.
Saves load_tests/results/keyed_limits.json.

    python load_tests/bench_keyed_limits.py [--requests 600] [--rounds 4]

Per-key limits are admitted on the ingress's own counts and synced in the background
(gateway/shared_limits.py), so a keyed request waits on no remote call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import bench_gateway_only as bench  # noqa: E402
from host import machine  # noqa: E402

RESULTS = HERE / "results"
LIMIT = 10_000_000  # requests and tokens per minute: never reached, always counted


async def sequential(url: str, key: str | None, n: int) -> list[float]:
    """`n` chat requests one after another; each one's latency (ms)."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    latencies = []
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as client:
        for i in range(n):
            body = {"model": "small", "max_tokens": 8,
                    "messages": [{"role": "user", "content": f"{bench.PROMPTS[i % len(bench.PROMPTS)]} (#{i})"}]}
            started = time.perf_counter()
            response = await client.post("/v1/chat/completions", json=body)
            latencies.append(1000 * (time.perf_counter() - started))
            response.raise_for_status()
    return latencies


def measure(url: str, key: str, args: argparse.Namespace) -> list[dict[str, float]]:
    asyncio.run(sequential(url, key, args.warmup))
    asyncio.run(sequential(url, None, args.warmup))
    rounds = []
    for number in range(args.rounds):
        keyed = bench.p50_p99(asyncio.run(sequential(url, key, args.requests)))
        anonymous = bench.p50_p99(asyncio.run(sequential(url, None, args.requests)))
        row = {f"keyed_{k}": v for k, v in keyed.items()} | {f"anonymous_{k}": v for k, v in anonymous.items()}
        row |= {"added_p50_ms": keyed["p50_ms"] - anonymous["p50_ms"], "added_p99_ms": keyed["p99_ms"] - anonymous["p99_ms"]}
        rounds.append(row)
        print(f"  round {number}: keyed p50 {keyed['p50_ms']:.2f} / p99 {keyed['p99_ms']:.2f} ms, anonymous p50 "
              f"{anonymous['p50_ms']:.2f} / p99 {anonymous['p99_ms']:.2f} ms, added p50 {row['added_p50_ms']:+.2f} ms",
              flush=True)
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=600, help="sequential requests per round and caller")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--out", type=Path, default=RESULTS / "keyed_limits.json")
    args = parser.parse_args()
    from gateway.keys import KeyStore

    def with_key(scratch: Path) -> dict[str, str]:
        nonlocal key
        store = scratch / "keys.sqlite"
        _, key = KeyStore(store).create("bench", rpm=LIMIT, tpm=LIMIT)
        # Open on loopback as the other rows are; the store makes the key known and limited.
        return {"GATEWAY_AUTH__KEYS_DB": str(store), "GATEWAY_AUTH__OPEN": "true"}

    key = ""
    started = datetime.now(timezone.utc)
    with bench.row_b("bench-keyed-", with_key) as url:
        rounds = measure(url, key, args)
    result = {
        "date": started.isoformat(timespec="seconds"), "machine": machine(),
        "config": {"requests": args.requests, "rounds": args.rounds, "rpm": LIMIT, "tpm": LIMIT,
                   "gateway": "row (b): mock tiers, HAProxy ingress, default settings, a key store"},
        "added_p50_ms_median": statistics.median(r["added_p50_ms"] for r in rounds),
        "added_p99_ms_median": statistics.median(r["added_p99_ms"] for r in rounds),
        "rounds": rounds,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"added by a limited key: p50 {result['added_p50_ms_median']:+.2f} ms, p99 "
          f"{result['added_p99_ms_median']:+.2f} ms (medians of {args.rounds} rounds); {args.out}")


if __name__ == "__main__":
    main()
