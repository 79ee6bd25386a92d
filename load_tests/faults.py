"""Fault drills under a bounded load: every request completes, fails cleanly, or is lost.

Each scenario runs while clients send a mix of `auto`, `small` and `large` requests;
a request is *succeeded* (200), *failed cleanly* (an OpenAI-shaped JSON error), or
*lost* (no answer within the client timeout, a dropped connection, a malformed reply).
Target: lost = 0 everywhere. Recovery time = from the fault until a request pinned to
the hit tier succeeds again. No fault hooks in the product: processes are killed or
stopped the way real failures happen.

    python load_tests/faults.py [--seconds 20] [--clients 4]     (make faults)

Scenarios: kill a large-tier replica (SIGKILL), crash the small tier's vLLM engine core
(SIGKILL of its child process), stall the large engine (SIGSTOP 8 s), disconnect
streaming clients mid-answer, load a corrupt adapter through the admin API.
Invalid live configs are covered in-process (tests/api: the last good config stays).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

RESULTS = Path(__file__).parent / "results"
KEY = "faults-admin-key"
PROMPTS = {"auto": "How do I reset my password?", "small": "Where is my order?", "large": "What is a refund?"}


def deploy(port: int, registry: Path) -> None:
    import ray
    from ray import serve

    from deployments.app import build
    from gateway.settings import Settings

    ray.init(namespace="faults", include_dashboard=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    settings = Settings(
        admin={"api_key": KEY}, adapters={"registry_dir": registry},
        small={"quantization": None, "dtype": "float32"},
    )
    serve.run(build(settings), name=settings.app_name, route_prefix="/")


def replica_pid(deployment: str) -> int:
    """Ray titles an actor's worker process `ray::ServeReplica:<app>:<deployment>...`."""
    import psutil

    title = f"ServeReplica:gateway:{deployment}"
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if cmdline.startswith("ray::") and title in cmdline:
            return proc.pid
    raise RuntimeError(f"no live replica of {deployment}")


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
        async with httpx.AsyncClient(base_url=url, timeout=180) as http:
            end = time.monotonic() + seconds
            n = 0
            while time.monotonic() < end:
                await one(http, models[(i + n) % 3], tally, stream=stream_drop, drop=stream_drop)
                n += 1

    await asyncio.gather(*(client(i) for i in range(clients)))


async def recovered(url: str, model: str, since: float, limit_s: float = 300) -> float | None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
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
    await fault()
    recovery = await recovered(url, hit, started) if hit else None
    await traffic
    result = {"scenario": name, **tally.counts, "statuses": tally.statuses,
              "recovery_s": None if recovery is None else round(recovery, 2)}
    print(f"{name:24s} sent {tally.counts['sent']:4d}  ok {tally.counts['succeeded']:4d}  "
          f"clean-fail {tally.counts['failed_cleanly']:3d}  lost {tally.counts['lost']:2d}  "
          f"recovery {result['recovery_s']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--port", type=int, default=8014)
    args = parser.parse_args()
    from gateway.settings import Settings

    scratch = Path(tempfile.mkdtemp(prefix="faults-"))
    registry = scratch / "registry"
    shutil.copytree(Settings().adapters.registry_dir, registry, ignore=shutil.ignore_patterns(".lock"))
    url = f"http://127.0.0.1:{args.port}"
    deploy(args.port, registry)

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
                                       headers={"authorization": f"Bearer {KEY}"})
        assert response.status_code == 400, response.text

    async def run_all() -> list[dict]:
        return [
            await scenario(url, "kill large replica", kill_large, args, "large"),
            await scenario(url, "crash small engine core", crash_small_engine, args, "small"),
            await scenario(url, "stall large engine 8s", stall_large, args, "large"),
            await scenario(url, "disconnect mid-stream", nothing, args, None, stream_drop=True),
            await scenario(url, "load corrupt adapter", corrupt_adapter, args, "small"),
        ]

    results = asyncio.run(run_all())
    report = {
        "benchmark": "faults", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "seconds_per_scenario": args.seconds, "clients": args.clients, "scenarios": results,
        "lost_total": sum(r["lost"] for r in results), "target": {"lost_total": 0},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "faults.json").write_text(json.dumps(report, indent=2))
    print(f"lost in total: {report['lost_total']}")
    from ray import serve

    serve.shutdown()
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
