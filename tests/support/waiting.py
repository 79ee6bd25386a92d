"""Polling for end-to-end tests: what the real app does in the background (journals,
canaries, pollers) becomes visible within a bound, not at once."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, every: float = 0.5) -> T:
    """The predicate's first truthy value; AssertionError if none within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"not met within {timeout:.0f} s")
