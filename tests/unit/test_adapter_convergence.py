"""When an adapter change counts as applied on the small tier: every reporting replica at the
new generation, and at least one reporting (an empty board says nothing)."""

import asyncio

from prometheus_client import CollectorRegistry

from adapters.fleet import AdapterChanges, converged
from adapters.metrics import AdapterMetrics
from adapters.registry import AdapterRegistry
from engines.types import AdapterReport
from tests.support.adapters import BASE, make_adapter


def test_every_reporting_replica_must_be_current():
    assert converged({"a": AdapterReport(generation=3), "b": AdapterReport(generation=4)}, 3)
    assert not converged({"a": AdapterReport(generation=3), "b": AdapterReport(generation=2)}, 3)


def test_no_report_is_not_convergence():
    assert not converged({}, 1)


class ScriptedFleet:
    """Reports from a script, one entry per call (the last repeats); probes always pass."""

    def __init__(self, script: list[dict[str, AdapterReport]]) -> None:
        self.script = script

    async def probe(self, adapter) -> None:
        return None

    async def reports(self):
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]


def _load(tmp_path, fleet: ScriptedFleet, timeout_s: float):
    registry = AdapterRegistry(tmp_path / "adapters", base=BASE)
    changes = AdapterChanges(
        registry, fleet, lambda: None, AdapterMetrics(CollectorRegistry()), converge_timeout_s=timeout_s,
    )
    path = make_adapter(tmp_path / "src", "billing", "billing-v1")
    return asyncio.run(changes.load(str(path), activate=True))


def test_a_change_seen_by_no_replica_stays_pending(tmp_path):
    result = _load(tmp_path, ScriptedFleet([{}]), timeout_s=0.2)
    assert (result.converged, result.replicas) == (False, 0)


def test_a_change_waits_through_an_empty_board_for_the_replicas(tmp_path):
    late = {"r1": AdapterReport(generation=10**6), "r2": AdapterReport(generation=10**6)}
    result = _load(tmp_path, ScriptedFleet([{}, {}, late]), timeout_s=5.0)
    assert (result.converged, result.replicas) == (True, 2)
