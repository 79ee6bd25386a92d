"""Fuzz: ten thousand generated requests against the real app, then a health check.

    python load_tests/fuzz.py [--requests 10000] [--concurrency 8] [--timeout 60] [--seed N]   (make fuzz)

The app is deployed the production way (load_tests/cluster.py: `ray start --head` + `serve
deploy`), its state in a scratch cache directory (load_tests/soak.py's `isolated_args`)
with a key store holding one user key and one admin-role key, and a configured admin key.
The requests are Hypothesis's, from the gateway's own request models
(tests/support/fuzz_requests.py): every /v1 and /admin route, well-formed and broken
bodies, raw bytes, odd headers, methods, paths and sizes; mostly malformed (a fast 4xx),
the well-formed generation requests capped at 8 tokens so the CPU engines answer quickly.
Each answer is judged as the in-process fuzz test judges it (tests/support/fuzz_oracle.py);
a request without an answer within `--timeout` seconds is a hang.

Writes load_tests/results/fuzz.json: requests, server_errors, hangs, documented_503,
bad_error_shape, connection_errors, status_counts, by_kind, duration_s, healthy_after,
and examples of every failure. Exits 1 when any of those failures happened or the app
was not healthy after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator
from urllib.parse import quote

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # tests.support: the request strategies and the oracle
from cluster import Cluster  # noqa: E402
from soak import isolated_args  # noqa: E402

from tests.support.fuzz_oracle import judge  # noqa: E402
from tests.support.fuzz_requests import Credentials, FuzzRequest, Target, fuzz_requests  # noqa: E402

RESULTS = HERE / "results"
ADMIN_KEY = "fuzz-admin-key"
# Mostly malformed: a well-formed generation request costs the CPU engines a second or more.
WEIGHTS = {"valid": 2, "mutated": 4, "raw": 3, "headers": 3, "method": 1, "path": 1, "oversized": 1}
EXAMPLES_KEPT = 10
FAILURES = ("server_error", "bad_error_shape", "hang", "connection_error")


@dataclass
class Tally:
    secrets: list[str]
    statuses: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    by_kind: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    slowest: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def record(self, request: FuzzRequest, status: int | None, outcome: str, why: str, elapsed: float) -> None:
        self.statuses[str(status)] += 1
        self.outcomes[outcome] += 1
        self.by_kind[request.kind][str(status)] += 1
        if outcome in (*FAILURES, "unsent") and len(self.examples[outcome]) < EXAMPLES_KEPT:
            self.examples[outcome].append({"status": status, "why": why[:500], "request": request.describe(self.secrets)})
        self.slowest = sorted([*self.slowest, (elapsed, {"s": round(elapsed, 2), "status": status,
                               "kind": request.kind, "path": request.path[:120]})], key=lambda p: -p[0])[:5]


def generate(target: Target, count: int, seed: int) -> list[FuzzRequest]:
    """`count` requests from the strategies (Hypothesis's generation phase only: no shrinking)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as with_seed

    out: list[FuzzRequest] = []
    while len(out) < count:  # Hypothesis may stop a batch early; another seed continues
        @with_seed(seed + len(out))
        @settings(max_examples=count - len(out), database=None, deadline=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(fuzz_requests(target, WEIGHTS))
        def collect(request: FuzzRequest) -> None:
            out.append(request)

        collect()
    random.Random(seed).shuffle(out)  # kinds interleaved, not in Hypothesis's order
    return out[:count]


async def body_stream(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 65536):
        yield body[start:start + 65536]


def exact_url(http: httpx.AsyncClient, path: str) -> httpx.URL:
    """The generated path sent as it is (non-ASCII percent-encoded): parsed as a URL, a path
    such as `//x:KV` would name a host and a port, not a path of the gateway's."""
    return http.base_url.copy_with(raw_path=quote(path, safe="/?=&%:@!$'()*+,;~-._#[]").encode("ascii"))


async def fire(http: httpx.AsyncClient, request: FuzzRequest, timeout_s: float, tally: Tally) -> None:
    content: bytes | AsyncIterator[bytes] | None = request.body
    if request.chunked and request.body:
        content = body_stream(request.body)
    started = time.monotonic()
    try:
        response = await asyncio.wait_for(
            http.request(request.method, exact_url(http, request.path), headers=request.headers, content=content),
            timeout_s,
        )
    except asyncio.TimeoutError:
        tally.record(request, None, "hang", f"no answer in {timeout_s:.0f} s", time.monotonic() - started)
        return
    except (httpx.LocalProtocolError, httpx.InvalidURL) as exc:  # the client would not send it: nothing to judge
        tally.record(request, None, "unsent", f"{type(exc).__name__}: {exc}", time.monotonic() - started)
        return
    except httpx.HTTPError as exc:
        tally.record(request, None, "connection_error", f"{type(exc).__name__}: {exc}", time.monotonic() - started)
        return
    verdict = judge(request.method, request.path, response.status_code,
                    response.headers.get("content-type", ""), response.content)
    tally.record(request, response.status_code, verdict.outcome, verdict.why, time.monotonic() - started)


async def run(url: str, requests: list[FuzzRequest], concurrency: int, timeout_s: float, tally: Tally) -> None:
    queue: asyncio.Queue[FuzzRequest] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    done = 0
    started = time.monotonic()

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal done
        while not queue.empty():
            await fire(http, queue.get_nowait(), timeout_s, tally)
            done += 1
            if done % 500 == 0:
                failed = sum(tally.outcomes[o] for o in FAILURES)
                print(f"{done}/{len(requests)} in {time.monotonic() - started:.0f} s, failures {failed}", flush=True)

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s + 5, limits=limits, follow_redirects=False) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"} if key else {}


def discover(url: str, credentials: Credentials, max_body_bytes: int) -> Target:
    """The models and adapter domains the app serves, as the fuzzer's names to use."""
    user, admin = bearer(credentials.user), bearer(credentials.admin)
    models = [m["id"] for m in httpx.get(f"{url}/v1/models", headers=user, timeout=30).json()["data"]]
    adapters = httpx.get(f"{url}/admin/adapters", headers=admin, timeout=30)
    domains = sorted(adapters.json().get("domains", {})) if adapters.status_code == 200 else []
    return Target(credentials, models=models, domains=domains, max_body_bytes=max_body_bytes)


def healthy(url: str, credentials: Credentials) -> dict[str, Any]:
    chat = httpx.post(f"{url}/v1/chat/completions", headers=bearer(credentials.user),
                      json={"model": "auto", "max_tokens": 4, "messages": [{"role": "user", "content": "hello"}]},
                      timeout=300)
    health = httpx.get(f"{url}/health", timeout=30)
    return {"chat": chat.status_code, "health": health.status_code,
            "ok": chat.status_code == 200 and health.status_code == 200}


def fuzz(url: str, credentials: Credentials, args: argparse.Namespace, seed: int, max_body_bytes: int) -> dict[str, Any]:
    """Generate, send, check health after: the report."""
    tally = Tally(secrets=[credentials.user, credentials.admin, credentials.admin_config or ADMIN_KEY])
    target = discover(url, credentials, max_body_bytes)
    generating = time.monotonic()
    requests = generate(target, args.requests, seed)
    generate_s = time.monotonic() - generating
    print(f"{len(requests)} requests generated in {generate_s:.0f} s (seed {seed})", flush=True)
    sending = time.monotonic()
    asyncio.run(run(url, requests, args.concurrency, args.timeout, tally))
    send_s = time.monotonic() - sending
    after = healthy(url, credentials)
    sent = sum(tally.statuses.values())
    report = {
        "benchmark": "fuzz", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "seed": seed, "concurrency": args.concurrency, "timeout_s": args.timeout, "weights": WEIGHTS,
        "models": list(target.models), "domains": list(target.domains),
        "requests": sent, "server_errors": tally.outcomes["server_error"], "hangs": tally.outcomes["hang"],
        "documented_503": tally.outcomes["documented_503"], "bad_error_shape": tally.outcomes["bad_error_shape"],
        "connection_errors": tally.outcomes["connection_error"], "unsent": tally.outcomes["unsent"],
        "status_counts": dict(sorted(tally.statuses.items())),
        "by_kind": {kind: dict(sorted(c.items())) for kind, c in sorted(tally.by_kind.items())},
        "duration_s": round(send_s, 1), "generate_s": round(generate_s, 1),
        "rps": round(sent / send_s, 1) if send_s else None,
        "slowest": [entry for _, entry in tally.slowest],
        "healthy_after": after["ok"], "health_check": after, "examples": dict(tally.examples),
        "targets": {"server_errors": 0, "hangs": 0, "bad_error_shape": 0, "connection_errors": 0,
                    "healthy_after": True},
    }
    report["met"] = after["ok"] and not any(report[k] for k in report["targets"] if k != "healthy_after")
    return report


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds without an answer: a hang")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--port", type=int, default=8019)
    parser.add_argument("--url", default="", help="fuzz a gateway already running there instead (no Ray started)")
    parser.add_argument("--user-key", default="", help="with --url: a user API key (none: an open gateway)")
    parser.add_argument("--admin-key", default="", help="with --url: an admin key")
    parser.add_argument("--out", type=Path, default=RESULTS / "fuzz.json")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    from deployments.settings import Settings

    if args.url:
        credentials = Credentials(args.user_key, args.admin_key, args.admin_key or None)
        report = fuzz(args.url, credentials, args, seed, Settings().limits.max_body_bytes)
        report["deployment"] = f"already running at {args.url}"
    else:
        report = fuzz_real_app(args, seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    shown = ("requests", "server_errors", "hangs", "documented_503", "bad_error_shape", "connection_errors",
             "duration_s", "healthy_after", "met")
    print(json.dumps({k: report[k] for k in shown}))
    return 0 if report["met"] else 1


def fuzz_real_app(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """The app deployed with its state in a scratch directory, keys on, fuzzed, stopped."""
    from deployments.settings import Settings
    from gateway.keys import KeyStore

    scratch = Path(tempfile.mkdtemp(prefix="fuzz-"))
    settings_args = {**isolated_args(scratch), "admin": {"api_key": ADMIN_KEY},
                     "auth": {"keys_db": str(scratch / "keys.sqlite")}}
    keys = KeyStore(scratch / "keys.sqlite")  # with a key in it, the API asks for keys
    credentials = Credentials(keys.create("fuzz-user")[1], keys.create("fuzz-admin", role="admin")[1], ADMIN_KEY)
    cluster = Cluster(args.port, scratch, settings_args)
    started = time.monotonic()
    try:
        cluster.start()
        print(f"app ready in {time.monotonic() - started:.0f} s", flush=True)
        report = fuzz(cluster.url, credentials, args, seed, Settings(**settings_args).limits.max_body_bytes)
    finally:
        cluster.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    report["deployment"] = "ray start --head + serve deploy deployments/serve_config.yaml (keys on, admin key set)"
    return report


if __name__ == "__main__":
    sys.exit(main())
