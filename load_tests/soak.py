"""Soak: the embedded default under a mixed load for 30 minutes, its state sampled each
minute. Targets: 0 failed or lost requests; every replica's RSS grows at most 10 % between
minute 5 and the end; open file descriptors flat.

    python load_tests/soak.py [--minutes 30] [--users 4]       (make soak)

The app is deployed the production way (load_tests/cluster.py), its state (key store,
shadow store, registry and KB copies) in a scratch cache directory; the shipped live
config mirrors traffic to shadow targets at its shipped rates and journals every answer.
Locust's `SoakUser` sends `auto`, pinned tiers, pinned adapters, grounded answers and
feedback. Each minute: RSS (with child processes: the vLLM engine core) and open fds of
every replica, and the SQLite files' sizes. Writes load_tests/results/soak.json and soak.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster import Cluster, actor_pids, replica_pids  # noqa: E402

RESULTS = Path(__file__).parent / "results"
DEPLOYMENTS = ("Ingress", "SmallEngine", "LargeEngine", "Reranker")
ACTORS = ("LoadBoard", "LimitBoard")  # plain Ray actors of the app (the limit board: once a limited key calls)
RSS_GROWTH_MAX = 0.10


def isolated_args(scratch: Path) -> dict:
    """Settings whose state lies under `scratch`; prepared models and trained artefacts are read
    from the user's cache."""
    from deployments.settings import Settings

    user = Settings()
    shutil.copytree(user.adapters.registry_dir, scratch / "adapters", ignore=shutil.ignore_patterns(".lock"))
    (scratch / "kb").mkdir()
    shutil.copy2(user.retrieval.kb, scratch / "kb" / "default.sqlite")
    return {
        "cache_dir": str(scratch), "models_dir": str(user.models_dir),
        "router": {"model_dir": str(user.router.model_dir)},
        "retrieval": {"reranker": str(user.retrieval.reranker), "kb_source": str(user.retrieval.kb_source)},
    }


def process_sample(pid: int) -> dict:
    proc = psutil.Process(pid)
    family = [proc, *proc.children(recursive=True)]
    rss = sum(p.memory_info().rss for p in family if p.is_running())
    fds = sum(p.num_fds() for p in family if p.is_running())
    return {"rss_mb": round(rss / 2**20, 1), "fds": fds}


def sample(scratch: Path, started: float) -> dict:
    replicas = {}
    found = [(d, replica_pids(d)) for d in DEPLOYMENTS] + [(a, actor_pids(a)) for a in ACTORS]
    for deployment, pids in found:
        for i, pid in enumerate(pids):
            try:
                replicas[f"{deployment}#{i}"] = process_sample(pid)
            except psutil.Error:
                continue
    files = {p.name: p.stat().st_size for p in scratch.rglob("*.sqlite*") if p.is_file()}
    return {"minute": round((time.monotonic() - started) / 60, 2), "replicas": replicas, "files": files}


def sampler(scratch: Path, started: float, stop: threading.Event, out: list[dict]) -> None:
    while not stop.is_set():
        out.append(sample(scratch, started))
        print(f"minute {out[-1]['minute']:5.1f}: " + "  ".join(
            f"{k} {v['rss_mb']:.0f}MB/{v['fds']}fd" for k, v in out[-1]["replicas"].items()), flush=True)
        stop.wait(60)


def growth(samples: list[dict], start_minute: float) -> dict:
    """Per replica: RSS and fds at the first sample from `start_minute` on and at the last."""
    first = next(s for s in samples if s["minute"] >= start_minute)
    last = samples[-1]
    report = {}
    for name, begin in first["replicas"].items():
        end = last["replicas"].get(name)
        if end is None:
            continue
        report[name] = {"rss_start_mb": begin["rss_mb"], "rss_end_mb": end["rss_mb"],
                        "rss_growth": round(end["rss_mb"] / begin["rss_mb"] - 1, 4),
                        "fds_start": begin["fds"], "fds_end": end["fds"]}
    return report


def plot(samples: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rss, fds) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    for name in samples[-1]["replicas"]:
        points = [(s["minute"], s["replicas"][name]) for s in samples if name in s["replicas"]]
        rss.plot([m for m, _ in points], [v["rss_mb"] for _, v in points], label=name)
        fds.plot([m for m, _ in points], [v["fds"] for _, v in points], label=name)
    rss.set_ylabel("RSS (MB, with children)")
    fds.set_ylabel("open fds")
    fds.set_xlabel("minute")
    rss.legend(fontsize=7)
    rss.set_title("soak: replicas' memory and file descriptors")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run_locust(url: str, minutes: float, users: int, summary: Path) -> None:
    env = {**os.environ, "LOAD_SHAPE": "soak", "LOCUST_USERS": str(users),
           "LOCUST_DURATION_S": str(minutes * 60), "LOCUST_SUMMARY": str(summary)}
    locust = Path(sys.executable).parent / "locust"
    subprocess.run([str(locust), "-f", str(Path(__file__).parent / "locustfile_soak.py"), "--headless",
                    "--host", url, "--csv", str(RESULTS / "soak_locust"), "--only-summary"],
                   env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--port", type=int, default=8016)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="soak-"))
    cluster = Cluster(args.port, scratch, isolated_args(scratch))
    cluster.start()
    samples: list[dict] = []
    stop = threading.Event()
    started = time.monotonic()
    thread = threading.Thread(target=sampler, args=(scratch, started, stop, samples), daemon=True)
    thread.start()
    summary = RESULTS / "soak_locust_summary.json"
    try:
        run_locust(cluster.url, args.minutes, args.users, summary)
        samples.append(sample(scratch, started))
    finally:
        stop.set()
        thread.join(timeout=120)
        cluster.stop()
    load = json.loads(summary.read_text())
    replicas = growth(samples, min(5.0, args.minutes / 6))
    worst = max((r["rss_growth"] for r in replicas.values()), default=None)
    fds_flat = all(r["fds_end"] <= r["fds_start"] + 8 for r in replicas.values())
    report = {
        "benchmark": "soak", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "minutes": args.minutes, "users": args.users,
        "requests": load["requests"], "failures": load["failures"], "rps": load["rps"],
        "latency_ms": load["latency_ms"], "routing_counts": load["routing_counts"],
        "by_kind": load["by_prompt_kind"], "replicas": replicas, "worst_rss_growth": worst,
        "fds_flat": fds_flat, "files_end": samples[-1]["files"] if samples else {},
        "samples": samples,
        "targets": {"failures": 0, "rss_growth_max": RSS_GROWTH_MAX, "fds": "flat (+8 at most)"},
        "met": load["failures"] == 0 and worst is not None and worst <= RSS_GROWTH_MAX and fds_flat,
    }
    (RESULTS / "soak.json").write_text(json.dumps(report, indent=2))
    plot(samples, RESULTS / "soak.png")
    print(json.dumps({k: report[k] for k in ("requests", "failures", "worst_rss_growth", "fds_flat", "met")}))
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
