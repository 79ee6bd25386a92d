"""A failing load board or adapter sync is visible: each failure counted, logged at WARNING
without flooding (first failure, not one line per tick), recovery logged.

Defect 7 (b) of "Reliability, round two": the engine replicas' reports to the load board
were `.remote(...)` calls nobody awaited, so a board that failed every call was invisible.
"""

from __future__ import annotations

import logging
import threading
import types

import pytest

from deployments import load_board
from deployments.adapter_sync import AdapterSync
from deployments.load_board import LoadPublisher
from engines.types import EngineLoad
from tests.support.fake_engine import FakeEngine


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def at(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]


@pytest.fixture
def serve_log():
    # Replica code logs to "ray.serve", which Ray Serve forwards and which does not propagate.
    handler = Records()
    logger = logging.getLogger("ray.serve")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)


class Response:
    """A call's outcome, waited for in `result` as BoardClient waits for the actor's."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error
        self.waited: list[float | None] = []

    def result(self, timeout_s: float | None = None) -> None:
        self.waited.append(timeout_s)
        if self.error is not None:
            raise self.error


class Report:
    """`board.report` whose calls are accepted at once but fail (or not) on the board."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.responses: list[Response] = []
        self.enough = threading.Event()

    def __call__(self, *args: object, timeout_s: float) -> None:
        """`BoardClient.report`: sends, then waits up to `timeout_s`."""
        response = Response(self.error)
        self.responses.append(response)
        if len(self.responses) >= 5:
            self.enough.set()
        response.result(timeout_s)


def run_publisher(publisher: LoadPublisher, report: Report) -> None:
    publisher.start()
    try:
        assert report.enough.wait(5.0)
    finally:
        publisher.stop()
        publisher._thread.join(2.0)


def test_failing_board_is_logged_once_at_warning_not_per_tick(monkeypatch, serve_log):
    monkeypatch.setattr(load_board, "REPORT_INTERVAL_S", 0.005)
    report = Report(RuntimeError("LoadBoard replica died"))
    publisher = LoadPublisher(types.SimpleNamespace(report=report), "small", "r1", EngineLoad)
    run_publisher(publisher, report)
    warnings = serve_log.at(logging.WARNING)
    assert len(warnings) == 1, (len(report.responses), warnings)
    assert "load-report" in warnings[0] and "LoadBoard replica died" in warnings[0]


def test_every_failed_report_is_counted(monkeypatch):
    monkeypatch.setattr(load_board, "REPORT_INTERVAL_S", 0.005)
    report = Report(RuntimeError("board overloaded"))
    counted: list[str] = []
    publisher = LoadPublisher(
        types.SimpleNamespace(report=report), "small", "r1", EngineLoad, count_failure=counted.append
    )
    run_publisher(publisher, report)
    assert counted and set(counted) == {"load-report"}
    # Every call that came back was counted (the last one may still be in flight).
    assert len(report.responses) - 1 <= len(counted) <= len(report.responses)


def test_each_report_is_waited_for_with_a_timeout():
    report = Report(None)
    publisher = LoadPublisher(types.SimpleNamespace(report=report), "small", "r1", EngineLoad)
    publisher.publish_if_due(0.0)
    assert report.responses[0].waited == [load_board.REPORT_TIMEOUT_S]
    assert load_board.REPORT_TIMEOUT_S <= load_board.FRESH_FOR_S  # later would not count anyway


def test_a_hung_board_counts_as_a_failure_and_recovery_is_logged(serve_log):
    report = Report(TimeoutError("Timed out resolving to ObjectRef."))
    counted: list[str] = []
    publisher = LoadPublisher(
        types.SimpleNamespace(report=report), "large", "r2", EngineLoad, count_failure=counted.append
    )
    publisher.publish_if_due(0.0)
    publisher.publish_if_due(0.0)
    assert counted == ["load-report", "load-report"] and publisher.failures.streak == 2
    report.error = None
    publisher.publish_if_due(0.0)
    assert publisher.failures.streak == 0 and len(counted) == 2
    assert any("recovered after 2 failures" in m for m in serve_log.at(logging.INFO))


def test_a_call_refused_before_it_is_sent_counts_too():
    def refuse(*args: object, timeout_s: float) -> None:
        raise RuntimeError("no replica of LoadBoard")

    counted: list[str] = []
    board = types.SimpleNamespace(report=refuse)
    LoadPublisher(board, "small", "r1", EngineLoad, count_failure=counted.append).publish_if_due(0.0)
    assert counted == ["load-report"]


class BrokenRegistry:
    def state(self):
        raise OSError("state.json: Input/output error")


async def test_adapter_sync_failures_are_counted_and_logged_once(serve_log):
    counted: list[str] = []
    sync = AdapterSync(BrokenRegistry(), FakeEngine(), interval_s=0.01, count_failure=counted.append)
    for _ in range(5):
        await sync.run_once()
    assert counted == ["adapter-sync"] * 5
    errors = serve_log.at(logging.WARNING) + serve_log.at(logging.ERROR)
    assert len(errors) == 1 and "Input/output error" in errors[0]
