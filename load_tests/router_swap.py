"""Router version swap under load: 8 clients on `model=auto`, a new router version
activated (then rolled back) through `/admin/router` while they run.

Measured: failed requests (target 0), and per swap how long after the admin call a
request could still be answered by the old version: the latest start, relative to the
swap, of a request whose `x-gateway-router-version` is not the new one (target within
2 s; every request started later got the new version), with two ingress replicas (each
polls the registry on its own). Deployed the production way
(`ray start --head` + `serve deploy`, load_tests/cluster.py); run it alone.

    .venv/bin/python load_tests/router_swap.py --model DIR [--swaps 3] [--clients 8]

Writes load_tests/results/router_swap.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from cluster import Cluster

KEY = "router-swap-admin-key"
RESULTS = Path(__file__).parent / "results"
PROMPTS = ["What is the capital of Australia?", "What is 24 + 19?", "I want to cancel my order",
           "help me to locate the invoice #37777", "What is the plural of 'mouse'?"]


class Load:
    def __init__(self) -> None:
        self.sent = self.failed = 0
        self.failures: list[str] = []
        self.seen: list[tuple[float, str]] = []  # (start time, router version) per answer
        self.stop = False

    async def client(self, http: httpx.AsyncClient, index: int) -> None:
        i = index
        while not self.stop:
            body = {"model": "auto", "max_tokens": 4, "temperature": 0, "grounding": False,
                    "messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]}
            i += 1
            self.sent += 1
            started = time.monotonic()
            try:
                response = await http.post("/v1/chat/completions", json=body)
            except httpx.HTTPError as exc:
                self.failed += 1
                self.failures.append(type(exc).__name__)
                continue
            if response.status_code != 200:
                self.failed += 1
                self.failures.append(f"{response.status_code}: {response.text[:120]}")
                continue
            self.seen.append((started, response.headers.get("x-gateway-router-version", "")))


def converged_after(load: Load, since: float, version: str, until: float) -> float | None:
    """Seconds after `since` that a request could still start and get another version than
    `version` (0 when none did); None when no request started in the window got `version`."""
    window = [(t, v) for t, v in load.seen if since <= t < until]
    if not any(v == version for _, v in window):
        return None
    stale = [t - since for t, v in window if v != version]
    return max(stale, default=0.0)


async def swap(admin: httpx.AsyncClient, path: str, body: dict) -> tuple[float, str]:
    started = time.monotonic()
    response = await admin.post(path, json=body)
    response.raise_for_status()
    return started, response.json()["active"] or response.json()["serving"]


async def run(url: str, model: Path, swaps: int, clients: int, dwell_s: float) -> dict:
    load = Load()
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http, \
            httpx.AsyncClient(base_url=url, timeout=120, headers={"authorization": f"Bearer {KEY}"}) as admin:
        registered = (await admin.post("/admin/router", json={"path": str(model)})).json()
        versions = [v["version"] for v in (await admin.get("/admin/router")).json()["versions"]]
        default = registered["serving"]
        tasks = [asyncio.create_task(load.client(http, i)) for i in range(clients)]
        await asyncio.sleep(dwell_s)
        results = []
        for _ in range(swaps):
            for path, body, expect in (("/admin/router/activate", {"version": versions[-1]}, versions[-1]),
                                       ("/admin/router/rollback", {}, default)):
                started, _ = await swap(admin, path, body)
                await asyncio.sleep(dwell_s)
                results.append({"operation": path.rsplit("/", 1)[1], "version": expect,
                                "converged_s": converged_after(load, started, expect, started + dwell_s)})
        load.stop = True
        await asyncio.gather(*tasks)
    times = [r["converged_s"] for r in results if r["converged_s"] is not None]
    return {
        "clients": clients, "swaps": results, "requests": load.sent, "failed": load.failed,
        "failures": load.failures[:10], "requests_per_s": round(load.sent / (load.seen[-1][0] - load.seen[0][0]), 2)
        if len(load.seen) > 1 else None, "converged_p50_s": statistics.median(times) if times else None,
        "converged_max_s": max(times) if times else None,
        "all_converged": len(times) == len(results),
        "target": {"failed": 0, "converged_max_s": 2.0},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="A router trained on this pair's outcomes")
    parser.add_argument("--swaps", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--dwell-s", type=float, default=20.0, help="Load before and after each swap")
    parser.add_argument("--port", type=int, default=8011)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="router-swap-"))
    cluster = Cluster(args.port, scratch, {
        "admin": {"api_key": KEY}, "ingress": {"num_replicas": 2},
        "router": {"registry": str(scratch / "router-registry"), "poll_s": 0.5},
        "auth": {"keys_db": str(scratch / "keys.sqlite")},
        "shadow": {"store": str(scratch / "shadow.sqlite")},
    })
    cluster.start()
    try:
        report = asyncio.run(run(cluster.url, args.model.resolve(), args.swaps, args.clients, args.dwell_s))
    finally:
        cluster.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "router_swap.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "swaps"}, indent=2))
    for row in report["swaps"]:
        print(f"{row['operation']:9s} -> {row['version']:32s} converged in {row['converged_s']}")


if __name__ == "__main__":
    main()
