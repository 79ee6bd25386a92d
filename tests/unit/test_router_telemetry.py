"""A request's final routing decision, counted once by the router's metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from router.decision import RoutingDecision
from router.telemetry import RouterMetrics


def test_a_learned_decision_is_counted_with_its_version_score_and_queue() -> None:
    registry = CollectorRegistry()
    RouterMetrics(registry).record(RoutingDecision(
        tier="large", reason="learned:score", router_version="v2", score=0.7, queue_depth=3,
    ))
    value = registry.get_sample_value
    assert value("gateway_routing_decisions_total", {"tier": "large", "reason": "learned:score"}) == 1.0
    assert value("gateway_router_version_decisions_total", {"version": "v2", "tier": "large"}) == 1.0
    assert value("gateway_routing_score_count") == 1.0
    assert value("gateway_routing_queue_depth") == 3.0


def test_an_explicit_decision_counts_only_its_tier() -> None:
    registry = CollectorRegistry()
    RouterMetrics(registry).record(RoutingDecision(tier="small", reason="explicit"))
    value = registry.get_sample_value
    assert value("gateway_routing_decisions_total", {"tier": "small", "reason": "explicit"}) == 1.0
    assert value("gateway_routing_score_count") == 0.0
    assert value("gateway_router_version_decisions_total", {"version": "v2", "tier": "small"}) is None
