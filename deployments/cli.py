"""The `gateway` console entry point: the edge's commands plus `gateway serve`, which
starts (or joins) Ray and deploys the application built beside it."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from typing import Annotated, Literal, Optional

import typer

from deployments.app import build, serve_bind_host
from deployments.haproxy import check_binary, ensure_private_dir, ray_env, run_dir, shell_exports
from deployments.commands import app
from gateway.access import Access, AccessRefused, decide_access, is_loopback
from gateway.keys import census
from deployments.settings import Settings

logger = logging.getLogger(__name__)


@app.command()
def serve(
    address: Annotated[Optional[str], typer.Option(help="Ray cluster to join (default: local)")] = None,
    host: Annotated[Optional[str], typer.Option(help="HTTP bind address")] = None,
    port: Annotated[Optional[int], typer.Option(help="HTTP port")] = None,
    proxy: Annotated[
        Optional[Literal["python", "haproxy"]], typer.Option(help="Ingress proxy (GATEWAY_HTTP__PROXY)")
    ] = None,
    print_haproxy_env: Annotated[bool, typer.Option(
        "--print-haproxy-env", help="Print the Ray Serve variables (HAProxy, throughput mode, replica logs) as shell "
        "exports for `ray start`, and exit"
    )] = False,
    throughput_optimized: Annotated[Optional[bool], typer.Option(
        "--throughput-optimized/--no-throughput-optimized",
        help="Ray Serve's throughput-optimized mode (GATEWAY_HTTP__THROUGHPUT_OPTIMIZED)",
    )] = None,
) -> None:
    """Start (or join) Ray, deploy the gateway application and serve until Ctrl-C."""
    settings = _settings_with(
        address=address, host=host, port=port, proxy=proxy, throughput_optimized=throughput_optimized
    )
    if print_haproxy_env:
        _print_haproxy_env(settings)
        return
    run(settings)


def _settings_with(
    address: str | None, host: str | None, port: int | None,
    proxy: Literal["python", "haproxy"] | None = None, throughput_optimized: bool | None = None,
) -> Settings:
    settings = Settings()
    given = {"host": host, "port": port, "proxy": proxy, "throughput_optimized": throughput_optimized}
    http = settings.http.model_copy(update={k: v for k, v in given.items() if v is not None})
    return settings.model_copy(update={"http": http, "ray_address": address or settings.ray_address})


def _print_haproxy_env(settings: Settings) -> None:
    prepare_haproxy(settings)
    typer.echo(shell_exports(ray_env(settings)), nl=False)


def decided_access(settings: Settings, bind_host: str | None) -> Access:
    """Open or closed, decided once: a gateway nobody could call exits here (2)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return decide_access(settings.auth, bind_host, census(settings.auth.keys_db))
    except AccessRefused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def access_line(settings: Settings, access: Access) -> str:
    if not access.open:
        return f"API keys required ({settings.auth.keys_db})"
    where = "loopback: this machine's user" if access.local else "ANY CALLER on this address"
    return f"OPEN, no API key needed ({where}; GATEWAY_AUTH__OPEN / `gateway keys create` close it)"


def prepare_haproxy(settings: Settings) -> None:
    """A checked binary and a private directory, before any Ray process starts HAProxy."""
    if settings.http.proxy != "haproxy":
        return
    try:
        version = check_binary(settings)
        ensure_private_dir(run_dir(settings))
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        typer.echo(f"error: the HAProxy ingress: {exc} (or serve with --proxy python)", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"ingress: HAProxy {version}, hardened; files in {run_dir(settings)}", err=True)


def run(settings: Settings) -> None:
    access = decided_access(settings, settings.http.host)  # before Ray starts
    prepare_haproxy(settings)
    proxy_env = ray_env(settings)
    if settings.ray_address:
        # The proxy (and the rest) is chosen by the Ray processes when they start, not by this driver.
        typer.echo(
            "joining a running Ray cluster: it runs as configured (the ingress proxy, throughput mode, "
            "where replica logs go) only if every node's `ray start` had these variables: "
            'eval "$(gateway serve --print-haproxy-env)"', err=True,
        )
    # Before ray.init: the local Ray it starts (raylet, Serve controller, proxies and
    # replicas) inherits this environment, and Serve reads these variables at import.
    os.environ.update(proxy_env)

    import ray
    from ray import serve as ray_serve

    ray.init(address=settings.ray_address, namespace="gateway")
    ray_serve.start(http_options={"host": settings.http.host, "port": settings.http.port})
    bound = serve_bind_host(settings.http.host)
    if bound != settings.http.host:  # a Serve already running keeps the address it started with
        access = decided_access(settings, bound)
    if settings.http.proxy == "haproxy":
        warning = multi_node_warning(alive_nodes(), bound)
        if warning:
            logger.warning(warning)
    ray_serve.run(build(settings, access), name=settings.app_name, route_prefix="/")
    url = f"http://{settings.http.host}:{settings.http.port}"
    typer.echo(f"gateway ready at {url}/v1 ({access_line(settings, access)})")
    admin = "on" if settings.admin.api_key else "off (set GATEWAY_ADMIN__API_KEY to enable it)"
    typer.echo(f"admin API at {url}/admin: {admin}")
    wait_for_signal()
    ray_serve.shutdown()


def multi_node_warning(nodes: int, host: str | None) -> str | None:
    """Ray binds the ingress replicas' own HTTP ports to http.host: on loopback, HAProxy on
    one node cannot reach the replicas on another (ray#62522)."""
    if nodes <= 1 or not is_loopback(host):
        return None
    return (f"{nodes} Ray nodes but Serve binds {host}: HAProxy cannot reach the ingress replicas of "
            "other nodes; set http.host (--host, GATEWAY_HTTP__HOST) to a routable address such as 0.0.0.0")


def alive_nodes() -> int:
    """Live Ray nodes, or 0 when they cannot be counted: a warning never stops a start."""
    import ray

    try:
        return sum(1 for node in ray.nodes() if node.get("Alive"))
    except Exception:
        logger.debug("could not count Ray nodes", exc_info=True)
        return 0


def wait_for_signal() -> None:
    stop = {"now": False}

    def _stop(*_: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stop["now"]:
        time.sleep(0.5)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
