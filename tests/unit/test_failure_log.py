"""`background.failures`: how a background task's failures are logged and counted.
The clock is injected: a minute passes without sleeping."""

from __future__ import annotations

import asyncio
import logging

import pytest

from background.failures import FailureLog, log_if_it_dies


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def log(caplog):
    caplog.set_level(logging.DEBUG, logger="test.failures")
    return logging.getLogger("test.failures")


def lines(caplog, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_first_failure_warns_then_one_reminder_a_minute(caplog, log):
    clock, counted = Clock(), []
    failures = FailureLog("load-report", log, counted.append, remind_every_s=60.0, clock=clock)
    for tick in range(300):  # a minute of 200 ms ticks, less one
        clock.now = 100.0 + tick * 0.2
        failures.failed(RuntimeError("board down"))
    assert len(lines(caplog, logging.WARNING)) == 1
    assert counted == ["load-report"] * 300
    clock.now = 160.0  # a minute after the first
    failures.failed(RuntimeError("board down"))
    warnings = lines(caplog, logging.WARNING)
    assert len(warnings) == 2 and "301 failures in a row" in warnings[1]


def test_recovery_is_logged_once_and_a_new_streak_warns_again(caplog, log):
    clock = Clock()
    failures = FailureLog("adapter-sync", log, clock=clock)
    failures.failed(OSError("x"))
    failures.succeeded()
    failures.succeeded()
    assert lines(caplog, logging.INFO) == ["adapter-sync recovered after 1 failures"]
    clock.now += 1
    failures.failed(OSError("y"))
    assert len(lines(caplog, logging.WARNING)) == 2


def test_first_warning_carries_the_traceback(caplog, log):
    FailureLog("load-report", log).failed(ValueError("bad"))
    assert caplog.records[0].exc_info is not None


async def test_a_task_that_dies_is_counted_and_logged(caplog, log):
    counted: list[str] = []

    class Bug(BaseException):  # what `except Exception` in the task's loop lets through
        pass

    async def crash() -> None:
        raise Bug("bug")

    async def cancelled() -> None:
        await asyncio.sleep(10)

    dying = asyncio.get_running_loop().create_task(crash())
    log_if_it_dies(dying, "adapter-sync", log, counted.append)
    stopped = asyncio.get_running_loop().create_task(cancelled())
    log_if_it_dies(stopped, "other", log, counted.append)
    await asyncio.sleep(0)
    stopped.cancel()
    await asyncio.gather(dying, stopped, return_exceptions=True)
    await asyncio.sleep(0)  # done-callbacks run on the next loop turn
    assert counted == ["adapter-sync"]
    assert any("adapter-sync stopped for good" in m for m in lines(caplog, logging.ERROR))
