"""The HAProxy config Ray Serve renders, hardened before HAProxy reads it: stats and exporter on
loopback, a private user-level socket, a request timeout, OpenAI-shaped error pages; checked
against Ray's own template and by the shipped HAProxy binary's own config check."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from deployments.haproxy import real_binary
from deployments.haproxy_harden import ERROR_PAGES, Hardening, HardeningFailed, error_page, harden
from deployments.settings import Settings

LAUNCHER = Path(sys.executable).parent / "gateway-haproxy"


def rendered_by_ray(tmp_path: Path) -> str:
    """Ray 2.60's own template, rendered the way its HAProxy manager renders it."""
    from ray.serve._private.haproxy import HAProxyApi, HAProxyConfig
    from ray.serve.config import HTTPOptions

    run = tmp_path / "node"
    run.mkdir()
    config = HAProxyConfig(
        http_options=HTTPOptions(host="127.0.0.1", port=8000), socket_path=str(run / "admin.sock"),
        server_state_base=str(run), server_state_file=str(run / "state"),
        metrics_socket_path=str(run / "metrics.sock"),
    )
    api = HAProxyApi(cfg=config, config_file_path=str(run / "haproxy.cfg"))
    api._generate_config_file_internal()
    return (run / "haproxy.cfg").read_text()


@pytest.fixture(scope="module")
def ray_config(tmp_path_factory) -> str:
    return rendered_by_ray(tmp_path_factory.mktemp("ray"))


def hardened(text: str, tmp_path: Path) -> str:
    return harden(text, Hardening(timeout_http_request_s=30, error_dir=tmp_path / "errors"))


def test_ray_s_template_is_open_as_rendered(ray_config):
    # What this module exists for: if Ray fixes these, the rewrites can go.
    assert "mode 666 level admin" in ray_config
    assert "bind :9101" in ray_config and "bind *:8404" in ray_config
    assert "timeout http-request" not in ray_config


def test_stats_and_exporter_bind_loopback_only(ray_config, tmp_path):
    text = hardened(ray_config, tmp_path)
    assert "bind 127.0.0.1:9101" in text and "bind 127.0.0.1:8404" in text
    assert "bind :9101" not in text and "bind *:8404" not in text


def test_the_socket_is_private_and_user_level(ray_config, tmp_path):
    text = hardened(ray_config, tmp_path)
    socket_line = next(line for line in text.splitlines() if "stats socket" in line)
    assert "mode 600 level user expose-fd listeners" in socket_line


def test_a_request_timeout_bounds_slow_headers_and_bodies(ray_config, tmp_path):
    defaults = hardened(ray_config, tmp_path).split("\ndefaults\n", 1)[1].split("\nfrontend", 1)[0]
    assert "    timeout http-request 30s" in defaults.splitlines()


def test_haproxy_s_own_errors_are_openai_shaped(ray_config, tmp_path):
    text = hardened(ray_config, tmp_path)
    for status in (408, 502, 503, 504):
        assert f"errorfile {status} {tmp_path / 'errors' / f'{status}.http'}" in text
    head, body = error_page(503).split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in head
    assert json.loads(body)["error"]["code"] == "ingress_unavailable"
    assert f"Content-Length: {len(body)}".encode() in head
    assert set(ERROR_PAGES) == {408, 502, 503, 504}


def test_hardening_is_idempotent(ray_config, tmp_path):
    once = hardened(ray_config, tmp_path)
    assert hardened(once, tmp_path) == once


@pytest.mark.parametrize("line", ["stats socket", "bind :9101", "bind *:8404", "errorfile 503"])
def test_a_template_that_changed_shape_is_refused(ray_config, tmp_path, line):
    changed = "\n".join(text for text in ray_config.splitlines() if line not in text)
    with pytest.raises(HardeningFailed):
        hardened(changed, tmp_path)


def haproxy_check(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The shipped HAProxy's own config check (`-c`) of `text` hardened."""
    from deployments.haproxy_harden import write_error_pages

    write_error_pages(tmp_path / "errors")
    config = tmp_path / "hardened.cfg"
    config.write_text(hardened(text, tmp_path))
    return subprocess.run([str(real_binary(Settings())), "-c", "-f", str(config)],
                          capture_output=True, text=True, timeout=60)


def test_the_shipped_haproxy_accepts_the_hardened_config(ray_config, tmp_path):
    check = haproxy_check(ray_config, tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr


def fake_haproxy(tmp_path: Path) -> Path:
    """Stands in for HAProxy: prints its argv, and the config it was given."""
    script = tmp_path / "fake-haproxy"
    script.write_text('#!/bin/sh\necho "argv: $*"\nwhile [ "$1" != "-f" ]; do shift; done\ncat "$2"\n')
    script.chmod(0o755)
    return script


def launch(tmp_path: Path, run: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RG_HAPROXY_REAL_BINARY": str(fake_haproxy(tmp_path)), "RG_HAPROXY_RUN_DIR": str(run),
           "RG_HAPROXY_TIMEOUT_HTTP_REQUEST_S": "12"}
    return subprocess.run([str(LAUNCHER), *args], capture_output=True, text=True, env=env, timeout=60)


def test_the_launcher_hardens_in_place_then_becomes_haproxy(ray_config, tmp_path):
    run = tmp_path / "run"
    (run / "node").mkdir(parents=True)
    run.chmod(0o755)  # as Ray's makedirs leaves it on a `ray start` node
    config = run / "node" / "haproxy.cfg"
    config.write_text(ray_config)
    result = launch(tmp_path, run, ["-db", "-f", str(config), "-sf", "123"])
    assert result.returncode == 0, result.stderr
    assert f"argv: -db -f {config} -sf 123" in result.stdout  # Ray finds its pid by this path
    assert "timeout http-request 12s" in result.stdout and "bind 127.0.0.1:9101" in result.stdout
    assert config.read_text() == result.stdout.split("\n", 1)[1]
    assert stat.S_IMODE(config.stat().st_mode) == 0o600 and stat.S_IMODE(run.stat().st_mode) == 0o700
    assert (run / "errors" / "503.http").read_bytes() == error_page(503)


def test_the_launcher_refuses_what_it_cannot_harden(tmp_path):
    run = tmp_path / "run"
    (run / "node").mkdir(parents=True)
    config = run / "node" / "haproxy.cfg"
    config.write_text("global\n    maxconn 10\n")
    result = launch(tmp_path, run, ["-db", "-f", str(config)])
    assert result.returncode == 78 and "refusing to start HAProxy" in result.stderr
    assert "argv:" not in result.stdout


def test_the_launcher_refuses_a_config_outside_its_directory(ray_config, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    config = tmp_path / "elsewhere.cfg"
    config.write_text(ray_config)
    result = launch(tmp_path, run, ["-f", str(config)])
    assert result.returncode == 78 and "outside the private directory" in result.stderr


def with_buffers(text: str, size: int) -> str:
    """Ray's template with `tune.bufsize` as `RAY_SERVE_HAPROXY_TUNE_BUFSIZE` renders it."""
    assert "    tune.bufsize 16384\n" in text  # Ray's own default
    return text.replace("    tune.bufsize 16384\n", f"    tune.bufsize {size}\n")


def test_buffers_bigger_than_haproxy_s_thread_cache_get_a_cache_that_holds_them(ray_config, tmp_path):
    text = hardened(with_buffers(ray_config, 1_065_536), tmp_path)
    lines = text.splitlines()
    at = lines.index("    tune.bufsize 1065536")
    assert lines[at + 1] == f"    tune.memory.hot-size {4 * 1_065_536}"
    assert hardened(text, tmp_path) == text


def test_small_buffers_keep_haproxy_s_default_cache(ray_config, tmp_path):
    assert "tune.memory.hot-size" not in hardened(with_buffers(ray_config, 16_384), tmp_path)
    assert "tune.memory.hot-size" not in hardened(ray_config, tmp_path)


def test_the_shipped_haproxy_accepts_the_cache_size(ray_config, tmp_path):
    check = haproxy_check(with_buffers(ray_config, 1_065_536), tmp_path)
    assert check.returncode == 0 and "hot-size" not in check.stderr, check.stdout + check.stderr
