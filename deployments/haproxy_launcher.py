"""`gateway-haproxy`: the program Ray Serve starts as its HAProxy (RAY_SERVE_HAPROXY_BINARY_PATH).

Ray renders its config file, then runs `<binary> -db -f <file> ...` on every start and
reload. This launcher hardens that file in place (`deployments/haproxy_harden.py`) and then
becomes the real HAProxy (exec: same pid, same arguments, so Ray's process bookkeeping, which
looks for the config path in /proc/<pid>/cmdline, still finds it). If the file cannot be
hardened, HAProxy does not start and Ray reports the failure: never an unhardened ingress.

Kept free of Ray and of the settings tree: it runs once per reload, so it starts fast and
reads only the variables `deployments/haproxy.hardening_env` set.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

from deployments.haproxy_harden import Hardening, HardeningFailed, harden, write_error_pages

# Duplicated from deployments/haproxy.py on purpose: importing it would import the settings tree.
REAL_BINARY_ENV = "RG_HAPROXY_REAL_BINARY"
RUN_DIR_ENV = "RG_HAPROXY_RUN_DIR"
TIMEOUT_ENV = "RG_HAPROXY_TIMEOUT_HTTP_REQUEST_S"
EX_CONFIG = 78  # sysexits: configuration error


def main() -> NoReturn:
    args = sys.argv[1:]
    try:
        real = _real_binary()
        config = _config_path(args)
        if config is not None:
            harden_file(config, _run_dir(), int(os.environ.get(TIMEOUT_ENV, "30")))
    except (HardeningFailed, OSError, ValueError, KeyError) as exc:
        print(f"gateway-haproxy: refusing to start HAProxy: {exc}", file=sys.stderr)
        sys.exit(EX_CONFIG)
    os.execv(real, [real, *args])


def harden_file(config: Path, run_dir: Path, timeout_s: int) -> None:
    _check_private(run_dir)
    if run_dir.resolve() not in config.resolve().parents:
        raise ValueError(f"{config} is outside the private directory {run_dir}")
    errors = run_dir / "errors"
    write_error_pages(errors)
    hardened = harden(config.read_text(), Hardening(timeout_http_request_s=timeout_s, error_dir=errors))
    _replace(config, hardened)


def _real_binary() -> str:
    real = os.environ[REAL_BINARY_ENV]
    if Path(real).resolve() == Path(sys.argv[0]).resolve():
        raise ValueError(f"{REAL_BINARY_ENV} points at the launcher itself")
    return real


def _run_dir() -> Path:
    return Path(os.environ[RUN_DIR_ENV])


def _config_path(args: list[str]) -> Path | None:
    for flag, value in zip(args, args[1:]):
        if flag == "-f":
            return Path(value)
    return None


def _check_private(run_dir: Path) -> None:
    """Ours, and tightened to 0700 (Ray creates it with the umask's mode on a `ray start` node)."""
    info = run_dir.stat()
    if info.st_uid != os.getuid():
        raise PermissionError(f"{run_dir} belongs to another user")
    if info.st_mode & 0o077:
        run_dir.chmod(0o700)


def _replace(path: Path, text: str) -> None:
    """Atomically, 0600: HAProxy never reads a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".haproxy.", suffix=".cfg")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
