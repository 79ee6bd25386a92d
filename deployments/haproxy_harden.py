"""Hardening of the HAProxy config Ray Serve renders, before HAProxy reads it.

Ray 2.60's template has no knobs for these, and as rendered it:
- opens its stats page on *:8404 and a Prometheus exporter on *:9101, without auth;
- makes its runtime socket `mode 666 level admin`: any local user could re-point backends;
- has no `timeout http-request`, so a client that sends its headers or body slowly holds a
  connection (and up to two `tune.bufsize` buffers) for as long as `timeout client` (1 h);
- answers its own 502/503/504 with a plain-text 500, where clients expect OpenAI's shape;
- keeps its per-thread cache of freed memory at 512 KiB, smaller than the 1 MiB buffers the
  gateway asks for (`tune.bufsize`), so HAProxy allocates and frees two buffers a request.

`harden` rewrites the rendered text; the launcher (`deployments/haproxy_launcher.py`) runs it
on every start and reload. Each rewrite must find what it rewrites: a template that changed
shape fails loudly (HAProxy is not started) instead of running unhardened. Idempotent, so a
file hardened once passes through unchanged. Pure: text in, text out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

# Ray only sends `show stat`, `show info` and `show servers state` on its socket, all at level
# `user`; seamless reloads pass listeners through `expose-fd listeners`, which needs no level.
SOCKET_LEVEL = "user"
LOOPBACK = "127.0.0.1"


class HardeningFailed(RuntimeError):
    """The rendered config lacks a line the hardening rewrites: the template changed."""


@dataclass(frozen=True)
class Hardening:
    timeout_http_request_s: int
    error_dir: Path  # where the OpenAI-shaped error pages are (written by `write_error_pages`)


def harden(text: str, hardening: Hardening) -> str:
    text = _private_socket(text)
    text = _loopback_bind(text, "frontend prometheus")
    text = _loopback_bind(text, "listen stats")
    text = _request_timeout(text, hardening.timeout_http_request_s)
    text = _hot_cache(text)
    return _error_pages(text, hardening.error_dir)


def _private_socket(text: str) -> str:
    pattern = re.compile(r"^(\s*stats socket \S+) mode \d+ level \w+", re.MULTILINE)
    return _must_sub(pattern, rf"\1 mode 600 level {SOCKET_LEVEL}", text, "stats socket")


def _loopback_bind(text: str, section: str) -> str:
    """The section's `bind [addr]:port` on loopback: Ray's stats page and exporter."""
    pattern = re.compile(rf"^({re.escape(section)}\n\s*bind )\S*:(\d+)", re.MULTILINE)
    return _must_sub(pattern, rf"\g<1>{LOOPBACK}:\2", text, f"{section} bind")


def _request_timeout(text: str, seconds: int) -> str:
    """`timeout http-request` in `defaults`: with `option http-buffer-request` it bounds the
    wait for the headers and the whole body (a slow-body limit), not only the headers."""
    defaults = re.search(r"^defaults\n((?:[ \t].*\n|\n)*)", text, re.MULTILINE)
    if defaults is None:
        raise HardeningFailed("no defaults section")
    if re.search(r"^\s*timeout http-request ", defaults.group(1), re.MULTILINE):
        return text
    at = defaults.start(1)
    return f"{text[:at]}    timeout http-request {seconds}s\n{text[at:]}"


# HAProxy keeps freed objects in a per-thread cache of `tune.memory.hot-size` bytes (512 KiB
# unless set); a buffer that does not fit it is not kept, so each request then mallocs and frees
# its buffers (1 MiB + 64 KiB each for the default body limit). Measured on 2 cores, HAProxy
# alone in front of the mock server, 8 clients: 1.5 ms of HAProxy CPU a request with 1 MiB
# buffers, 0.13-0.17 ms with 16-512 KiB ones, 0.23-0.35 ms with 1 MiB ones and a 2-8 MiB cache
# (docs/operations.md). HOT_BUFFERS buffers a thread hold a request's two with room to spare.
HOT_BUFFERS = 4
HAPROXY_HOT_SIZE = 512 * 1024


def _hot_cache(text: str) -> str:
    """`tune.memory.hot-size` after `tune.bufsize`, when the buffers outgrow HAProxy's default."""
    bufsize = re.search(r"^([ \t]*)tune\.bufsize (\d+)[ \t]*\n", text, re.MULTILINE)
    if bufsize is None or re.search(r"^\s*tune\.memory\.hot-size ", text, re.MULTILINE):
        return text
    size = HOT_BUFFERS * int(bufsize.group(2))
    if size <= HAPROXY_HOT_SIZE:
        return text
    at = bufsize.end()
    return f"{text[:at]}{bufsize.group(1)}tune.memory.hot-size {size}\n{text[at:]}"


def _error_pages(text: str, error_dir: Path) -> str:
    """Ray's 50x pages (plain-text 500s) replaced by ours, and one for 408 added."""
    for status in (502, 503, 504):
        pattern = re.compile(rf"^(\s*errorfile {status} )\S+$", re.MULTILINE)
        text = _must_sub(pattern, rf"\g<1>{error_dir / f'{status}.http'}", text, f"errorfile {status}")
    if re.search(r"^\s*errorfile 408 ", text, re.MULTILINE):
        return text
    first = re.compile(r"^([ \t]*)errorfile \d{3} ", re.MULTILINE)
    return first.sub(lambda m: f"{m.group(1)}errorfile 408 {error_dir / '408.http'}\n{m.group(0)}", text, count=1)


def _must_sub(pattern: re.Pattern[str], replacement: object, text: str, what: str) -> str:
    result, count = pattern.subn(replacement, text)  # type: ignore[call-overload]
    if count == 0:
        raise HardeningFailed(f"Ray's HAProxy config has no `{what}` line to harden")
    return result


# HAProxy's own answers (no ingress replica up, a replica that timed out, a slow client), in
# the shape OpenAI clients parse; 503 and 504 tell them to retry.
ERROR_PAGES: dict[int, tuple[str, str, str]] = {
    408: ("Request Timeout", "request_timeout", "The request's headers and body took too long to arrive."),
    502: ("Bad Gateway", "ingress_unavailable", "No gateway replica answered; retry the request."),
    503: ("Service Unavailable", "ingress_unavailable", "No gateway replica is ready; retry the request."),
    504: ("Gateway Timeout", "ingress_timeout", "The gateway replica did not answer in time; retry the request."),
}


def error_page(status: int) -> bytes:
    reason, code, message = ERROR_PAGES[status]
    body = json.dumps({"error": {"message": message, "type": "server_error" if status != 408 else
                                 "invalid_request_error", "param": None, "code": code}})
    retry = "Retry-After: 1\r\n" if status in (502, 503, 504) else ""
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n{retry}"
            f"Cache-Control: no-cache\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n")
    return (head + body).encode()


def write_error_pages(error_dir: Path) -> None:
    error_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for status in ERROR_PAGES:
        (error_dir / f"{status}.http").write_bytes(error_page(status))
