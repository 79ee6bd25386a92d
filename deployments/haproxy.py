"""Ray Serve's HAProxy ingress, from the settings tree: the RAY_SERVE_* environment
variables that switch it on with the gateway's knobs (`http.proxy`, `http.haproxy`).

Ray reads them once, when each of its processes imports Serve, so they must be in the
environment of the process that starts Ray: `gateway serve` sets them before `ray.init`;
a cluster started with `ray start` needs them on every node (`gateway serve
--print-haproxy-env` prints them as shell exports). No Ray import here: this module only
writes text.
"""

from __future__ import annotations

import shlex

from deployments.settings import Settings

HEADER_ROOM = 64 * 1024  # bytes of headers on top of the largest body in one buffer

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
    }
    if knobs.timeout_server_s is not None:
        env["RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S"] = str(knobs.timeout_server_s)
    return env


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


def throughput_env(settings: Settings) -> dict[str, str]:
    """Ray Serve's throughput-optimized mode (`http.throughput_optimized`); {} when off.

    Safe for the gateway because nothing CPU-heavy runs on its event loop (routing,
    embeddings and SQLite go to threads): user code sharing the replica's loop only saves
    the cross-thread hops Ray otherwise makes on every request."""
    return {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"} if settings.http.throughput_optimized else {}
