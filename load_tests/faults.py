"""Fault drills under a bounded load: every request completes, fails cleanly, or is lost.

Each scenario runs while clients send a mix of `auto`, `small` and `large` requests;
a request is *succeeded* (200), *failed cleanly* (an OpenAI-shaped JSON error), or
*lost* (no answer within the client timeout, a dropped connection, a malformed reply).
Target: lost = 0 everywhere. Recovery time = from the fault until a request pinned to
the hit tier succeeds again. No fault hooks in the product: processes are killed or
stopped the way real failures happen.

    python load_tests/faults.py [--seconds 20] [--clients 4]     (make faults)
    python load_tests/faults.py --only "kill an ingress" --proxy python,haproxy
    python load_tests/faults.py --only attacks                    (the attack part alone)

Scenarios: kill a large-tier replica (SIGKILL), crash the small tier's vLLM engine core
(SIGKILL of its child process), stall the large engine (SIGSTOP 8 s), disconnect
streaming clients mid-answer, load a corrupt adapter through the admin API, push an
invalid live config with `serve deploy` (then a valid one, applied without restarts),
a rate-limited key hammered across the two ingress replicas, kill one of the two ingress
replicas (SIGKILL) under load, and fill the filesystem that holds the shadow store (a
64 MB tmpfs mounted for the drill, never the machine's own disk): serving goes on, the
failed shadow writes are counted.

Attacks (load_tests/attacks.py, first, without background traffic): each way in of the
security review (issue 27) tried once and expected to be refused: no key, a revoked key,
rating another key's answer or rating twice, reusing another request's x-request-id,
gate:false without the permission, a 5000-digit integer, a text/plain body, a bad Host,
/metrics and /ready without a key, detail headers for a user key, admin version
traversal, a key over its concurrency cap, Ray's x-request-disconnect-disabled header,
a huge max_tokens. A row each: attack, expected, got, ok.

The app is deployed the production way (load_tests/cluster.py: `ray start --head` and
`serve deploy` of deployments/serve_config.yaml) with two ingress replicas, the small
tier in float32 here, and scratch copies of the adapter registry and key store. The
drill owns that Ray instance and stops it at the end: don't run it beside another Ray.

`--proxy python,haproxy` runs the chosen scenarios once per ingress proxy (Ray Serve's
Python proxy, or HAProxy with the settings' `http.haproxy` knobs), each on a Ray started
afresh for it: Ray picks its proxy when it starts. Every row names its proxy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from attacks import Target, run_attacks, samples  # noqa: E402
from cluster import Cluster, replica_pids, replicas_serving  # noqa: E402

RESULTS = Path(__file__).parent / "results"
KEY = "faults-admin-key"
ADMIN = {"authorization": f"Bearer {KEY}"}
LOAD_AUTH: dict[str, str] = {}  # the load clients' API key, created at start
PROMPTS = {"auto": "How do I reset my password?", "small": "Where is my order?", "large": "What is a refund?"}


def replica_pid(deployment: str) -> int:
    """Ray titles an actor's worker process `ray::ServeReplica:<app>:<deployment>...`."""
    pids = replica_pids(deployment)
    if not pids:
        raise RuntimeError(f"no live replica of {deployment}")
    return pids[0]


def engine_core_pid(deployment: str) -> int:
    import psutil

    for child in psutil.Process(replica_pid(deployment)).children(recursive=True):
        if "EngineCore" in child.name() or "EngineCore" in " ".join(child.cmdline()):
            return child.pid
    children = psutil.Process(replica_pid(deployment)).children(recursive=True)
    if not children:
        raise RuntimeError(f"{deployment} has no engine process")
    return children[0].pid


class Tally:
    def __init__(self) -> None:
        self.counts = {"sent": 0, "succeeded": 0, "failed_cleanly": 0, "lost": 0}
        self.statuses: dict[str, int] = {}

    def record(self, outcome: str, status: str) -> None:
        self.counts["sent"] += 1
        self.counts[outcome] += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1


async def one(http: httpx.AsyncClient, model: str, tally: Tally, stream: bool = False, drop: bool = False) -> None:
    body = {"model": model, "max_tokens": 8, "stream": stream,
            "messages": [{"role": "user", "content": PROMPTS[model]}]}
    try:
        if stream:
            async with http.stream("POST", "/v1/chat/completions", json=body) as response:
                if response.status_code != 200:
                    await response.aread()
                    _classify(response, tally)
                    return
                async for line in response.aiter_lines():
                    if drop and line.startswith("data: {"):
                        tally.record("succeeded", "200-dropped")  # the client left on purpose
                        return
                    if line == "data: [DONE]":
                        tally.record("succeeded", "200")
                        return
                tally.record("lost", "stream-ended-without-done")
            return
        _classify(await http.post("/v1/chat/completions", json=body), tally)
    except (httpx.TimeoutException, httpx.TransportError) as exc:
        tally.record("lost", type(exc).__name__)


def _classify(response: httpx.Response, tally: Tally) -> None:
    if response.status_code == 200:
        tally.record("succeeded", "200")
        return
    try:
        error = response.json()["error"]
        clean = {"message", "type", "param", "code"} <= set(error)
    except (ValueError, KeyError, TypeError):
        clean = False
    tally.record("failed_cleanly" if clean else "lost", str(response.status_code))


async def load(url: str, seconds: float, clients: int, tally: Tally, stream_drop: bool = False) -> None:
    models = ["auto", "small", "large"]

    async def client(i: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=180, headers=LOAD_AUTH) as http:
            end = time.monotonic() + seconds
            n = 0
            while time.monotonic() < end:
                await one(http, models[(i + n) % 3], tally, stream=stream_drop, drop=stream_drop)
                n += 1

    await asyncio.gather(*(client(i) for i in range(clients)))


async def recovered(url: str, model: str, since: float, limit_s: float = 300) -> float | None:
    async with httpx.AsyncClient(base_url=url, timeout=60, headers=LOAD_AUTH) as http:
        while time.monotonic() - since < limit_s:
            try:
                response = await http.post("/v1/chat/completions", json={
                    "model": model, "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]})
                if response.status_code == 200:
                    return time.monotonic() - since
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    return None


async def scenario(url: str, name: str, fault, args: argparse.Namespace, hit: str | None,
                   stream_drop: bool = False) -> dict:
    tally = Tally()
    traffic = asyncio.create_task(load(url, args.seconds, args.clients, tally, stream_drop))
    await asyncio.sleep(args.seconds / 4)
    started = time.monotonic()
    checks = await fault() or {}
    recovery = await recovered(url, hit, started) if hit else None
    await traffic
    result = {"scenario": name, **tally.counts, "statuses": tally.statuses,
              "recovery_s": None if recovery is None else round(recovery, 2), "checks": checks}
    print(f"{name:28s} sent {tally.counts['sent']:4d}  ok {tally.counts['succeeded']:4d}  "
          f"clean-fail {tally.counts['failed_cleanly']:3d}  lost {tally.counts['lost']:2d}  "
          f"recovery {result['recovery_s']}  {json.dumps(checks) if checks else ''}")
    return result


async def config_view(url: str, samples: int = 8) -> list[dict]:
    """/admin/config from several answers: the proxy spreads them over both replicas."""
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=ADMIN) as http:
        return [(await http.get("/admin/config")).json() for _ in range(samples)]


async def limit_applied(url: str, limit: int, since: float, limit_s: float = 120) -> float | None:
    """Seconds until 8 answers in a row refuse one message over `limit` with that limit."""
    body = {"model": "small", "max_tokens": 1,
            "messages": [{"role": "user", "content": "hi"}] * (limit + 1)}
    streak = 0
    async with httpx.AsyncClient(base_url=url, timeout=60, headers=LOAD_AUTH) as http:
        while time.monotonic() - since < limit_s:
            response = await http.post("/v1/chat/completions", json=body)
            ok = response.status_code == 400 and f"the limit is {limit}" in response.text
            streak = streak + 1 if ok else 0
            if streak == 8:
                return time.monotonic() - since
            await asyncio.sleep(0.1)
    return None


def mount_small_fs(path: Path, size_mb: int = 64) -> Path:
    """A tmpfs of its own for the shadow store: the drill fills it, never the machine's disk."""
    path.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)], check=True)
    return path


def shadow_failures(url: str, scrapes: int = 8) -> float:
    """Failed shadow writes (journal and mirror) that one ingress replica counted: the
    highest of several scrapes, which the proxy spreads over the replicas. /metrics wants
    a key: the admin's, else the load clients'."""

    def failed() -> float:
        scraped = asyncio.run(samples(url, [ADMIN, LOAD_AUTH]))
        return sum(s.value for s in scraped
                   if s.name == "gateway_shadow_requests_total" and s.labels.get("outcome") == "failed")

    return max(failed() for _ in range(scrapes))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--port", type=int, default=8014)
    parser.add_argument("--only", default="", help="comma-separated parts of scenario names")
    parser.add_argument("--proxy", default="", help="comma-separated ingress proxies (python, haproxy), "
                        "drilled in turn; default: the settings' (GATEWAY_HTTP__PROXY, else python)")
    args = parser.parse_args()
    from deployments.settings import Settings

    proxies = [p.strip() for p in args.proxy.split(",") if p.strip()] or [Settings().http.proxy]
    if set(proxies) - {"python", "haproxy"}:
        parser.error(f"--proxy: python or haproxy, not {args.proxy!r}")
    results: list[dict] = []
    for proxy in proxies:
        results += drill(proxy, args)
        lost = write_report(proxies, args, results)  # after each proxy: a later crash keeps these
    print(f"lost in total, and attacks not refused as expected: {lost}")


def write_report(proxies: list[str], args: argparse.Namespace, results: list[dict]) -> int:
    attacks = [r for r in results if "attack" in r]
    report = {
        "benchmark": "faults", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "deployment": "ray start --head + serve deploy deployments/serve_config.yaml (2 ingress replicas)",
        "proxies": proxies, "seconds_per_scenario": args.seconds, "clients": args.clients,
        "scenarios": results, "lost_total": sum(r["lost"] for r in results),
        "attacks_tried": len(attacks), "attacks_mismatched": sum(not r["ok"] for r in attacks),
        "target": {"lost_total": 0, "attacks_mismatched": 0},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    # The attack part alone (--only attacks) keeps the full drill's faults.json.
    name = "attacks.json" if results and len(attacks) == len(results) else "faults.json"
    (RESULTS / name).write_text(json.dumps(report, indent=2))
    return report["lost_total"] + report["attacks_mismatched"]


def drill(proxy: str, args: argparse.Namespace) -> list[dict]:
    """The chosen scenarios on a Ray of their own whose ingress proxy is `proxy`."""
    from gateway.keys import KeyStore
    from deployments.settings import Settings

    print(f"--- ingress proxy: {proxy}")
    scratch = Path(tempfile.mkdtemp(prefix="faults-"))
    shutil.copytree(Settings().adapters.registry_dir, scratch / "registry", ignore=shutil.ignore_patterns(".lock"))
    shadow_fs = mount_small_fs(scratch / "shadowfs")
    keys = KeyStore(scratch / "keys.sqlite")
    LOAD_AUTH["authorization"] = f"Bearer {keys.create('drill-load')[1]}"  # with a key, auth is on
    limited = keys.create("drill-limited", rpm=12)[1]
    deployed = {
        "admin": {"api_key": KEY}, "adapters": {"registry_dir": str(scratch / "registry")},
        "auth": {"keys_db": str(scratch / "keys.sqlite")}, "ingress": {"num_replicas": 2},
        "small": {"quantization": None, "dtype": "float32"},
        "shadow": {"store": str(shadow_fs / "shadow.sqlite")}, "http": {"proxy": proxy},
    }
    cluster = Cluster(args.port, scratch, deployed)
    url = cluster.url
    cluster.start()

    async def kill_large() -> None:
        os.kill(replica_pid("LargeEngine"), signal.SIGKILL)

    async def crash_small_engine() -> None:
        os.kill(engine_core_pid("SmallEngine"), signal.SIGKILL)

    async def stall_large() -> None:
        pid = engine_core_pid("LargeEngine")
        os.kill(pid, signal.SIGSTOP)
        await asyncio.sleep(8)
        os.kill(pid, signal.SIGCONT)

    async def nothing() -> None:
        return None

    async def corrupt_adapter() -> None:
        bad = scratch / "corrupt"
        bad.mkdir()
        (bad / "adapter_config.json").write_text("{}")
        (bad / "adapter_model.safetensors").write_bytes(b"\0" * 64)
        (bad / "manifest.json").write_text("{not json")
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            response = await http.post("/admin/adapters", json={"path": str(bad), "activate": True},
                                       headers=ADMIN)
        assert response.status_code == 400, response.text

    async def invalid_config() -> dict:
        """Push a bad config, then a good one, with `serve deploy`; no replica restarts."""
        pids = {d: replica_pids(d) for d in ("Ingress", "SmallEngine", "LargeEngine")}
        bad = {"routing": {"learned": {"thresholds": {"probability": 7}}}, "limits": {"max_mesages": 4}}
        await asyncio.to_thread(cluster.deploy, bad)
        await asyncio.sleep(5)
        views = await config_view(url)
        rejected = all(v["last_rejected"] and "probability" in v["last_rejected"]["message"] for v in views)
        kept = all(v["config"]["routing"]["learned"]["thresholds"]["probability"] == 0.3 for v in views)
        pushed = time.monotonic()
        await asyncio.to_thread(cluster.deploy, {"limits": {"max_messages": 4}})
        applied = await limit_applied(url, 4, pushed)
        await asyncio.to_thread(cluster.deploy)  # back to the shipped one
        restarted = {d: replica_pids(d) != before for d, before in pids.items()}
        return {"rejected_on_every_replica": rejected, "last_good_kept": kept,
                "message": views[0]["last_rejected"]["message"] if views[0]["last_rejected"] else None,
                "valid_push_applied_s": None if applied is None else round(applied, 2),
                "replicas_restarted": restarted}

    async def rate_limited_key() -> dict:
        """36 concurrent requests on a 12-per-minute key, spread over both ingress replicas."""
        headers = {"authorization": f"Bearer {limited}"}
        body = {"model": "small", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}
        async with httpx.AsyncClient(base_url=url, timeout=180, headers=headers) as http:
            answers = await asyncio.gather(*(http.post("/v1/chat/completions", json=body) for _ in range(36)))
        statuses = [a.status_code for a in answers]
        refused = [a for a in answers if a.status_code == 429]
        return {"ok": statuses.count(200), "rate_limited": len(refused), "expected_ok": 12,
                "retry_after_on_every_429": all("retry-after" in a.headers for a in refused),
                "ingress_replicas_serving": replicas_serving({a.headers.get("x-request-id", "?") for a in answers})}

    async def kill_ingress() -> dict:
        """One of the two ingress replicas dies with requests in flight (SIGKILL)."""
        pids = replica_pids("Ingress")
        os.kill(pids[0], signal.SIGKILL)
        return {"ingress_replicas_before": len(pids)}

    async def fill_shadow_fs() -> dict:
        """The filesystem under the shadow store fills up for a while, then frees again."""
        before = shadow_failures(url)
        filler = shadow_fs / "filler"
        with filler.open("wb") as out:  # until ENOSPC: the store's next write fails
            try:
                while True:
                    out.write(b"\0" * (1 << 20))
                    out.flush()
            except OSError:
                pass
        await asyncio.sleep(args.seconds / 2)
        failed = shadow_failures(url) - before
        filler.unlink()
        return {"shadow_write_failures_counted_at_least": failed}

    scenarios = [
        ("kill large replica", kill_large, "large", False),
        ("crash small engine core", crash_small_engine, "small", False),
        ("stall large engine 8s", stall_large, "large", False),
        ("disconnect mid-stream", nothing, None, True),
        ("load corrupt adapter", corrupt_adapter, "small", False),
        ("push invalid config", invalid_config, None, False),
        ("rate limit, 2 ingress replicas", rate_limited_key, None, False),
        ("kill an ingress replica", kill_ingress, "small", False),
        ("fill the shadow store's fs", fill_shadow_fs, None, False),
    ]
    parts = [o.strip() for o in args.only.split(",") if o.strip()]
    chosen = [s for s in scenarios if not parts or any(o in s[0] for o in parts)]
    settings = Settings(**deployed)
    target = Target(
        url=url, admin=ADMIN, keys=keys, journal=shadow_fs / "shadow.sqlite",
        ingress_replicas=settings.ingress.num_replicas, cache_ttl_s=settings.auth.cache_ttl_s,
        max_tokens=settings.limits.max_tokens,
        default_max_concurrent=getattr(settings.auth, "default_max_concurrent", None),
    )

    async def run_all() -> list[dict]:
        # Attacks first, on a fresh deployment and with no traffic beside them.
        rows = await run_attacks(target) if not parts or "attacks" in parts else []
        return rows + [await scenario(url, name, fault, args, hit, stream_drop=drop)
                       for name, fault, hit, drop in chosen]

    try:
        results = asyncio.run(run_all())
    finally:
        cluster.stop()
        subprocess.run(["umount", str(shadow_fs)], check=False)
    shutil.rmtree(scratch, ignore_errors=True)
    return [{"proxy": proxy, **row} for row in results]


if __name__ == "__main__":
    main()
