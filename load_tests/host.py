"""The machine a benchmark ran on, as its results file names it."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("model name")), "")
    return f"{os.cpu_count()} CPUs ({model}), {platform.platform()}, Python {platform.python_version()}"
