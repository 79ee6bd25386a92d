"""Which served requests are mirrored where: table-driven over the rule fields."""

import pytest
from pydantic import ValidationError

from shadow.config import MirrorRule, ShadowConfig
from shadow.rules import Served, matches, select_targets

LARGE = Served(request_id="r1", tier="large", reason="learned:above_threshold", category="billing")
ADAPTER = Served(request_id="r2", tier="small", reason="explicit", domain="refund", version="refund-v2", category="refund")
BASE_SMALL = Served(request_id="r3", tier="small", reason="learned:below_threshold")


@pytest.mark.parametrize(
    "rule, served, expected",
    [
        (dict(target="small"), LARGE, True),
        (dict(tier="large", target="small"), LARGE, True),
        (dict(tier="small", target="large"), LARGE, False),
        (dict(adapter="*", target="large"), ADAPTER, True),
        (dict(adapter="*", target="large"), BASE_SMALL, False),
        (dict(adapter="refund", target="large"), ADAPTER, True),
        (dict(adapter="order", target="large"), ADAPTER, False),
        (dict(reason="learned:", target="small"), LARGE, True),
        (dict(reason="learned:", target="large"), ADAPTER, False),
        (dict(category="billing", target="small"), LARGE, True),
        (dict(category="billing", target="large"), BASE_SMALL, False),
    ],
)
def test_rule_matching(rule, served, expected):
    assert matches(MirrorRule(sample_rate=1.0, **rule), served) is expected


def test_sampling_dedup_and_never_the_primary_itself():
    rules = [
        MirrorRule(target="small", sample_rate=0.5),
        MirrorRule(target="small", sample_rate=1.0),  # same target twice: asked once
        MirrorRule(target="large", sample_rate=1.0),  # the primary's own target: skipped
        MirrorRule(target="candidate", sample_rate=0.1),
    ]
    draws = iter([0.4, 0.0, 0.0, 0.2])
    assert select_targets(rules, LARGE, lambda: next(draws)) == ["small"]
    draws = iter([0.6, 0.9, 0.0, 0.05])  # first rule loses its draw; the second still picks small
    assert select_targets(rules, LARGE, lambda: next(draws)) == ["small", "candidate"]


def test_zero_rate_rules_draw_nothing():
    calls = []
    select_targets([MirrorRule(target="small", sample_rate=0.0)], LARGE, lambda: calls.append(1) or 0.0)
    assert calls == []


def test_served_target_and_tags():
    assert ADAPTER.target == "small:refund@refund-v2" and LARGE.target == "large"
    assert ADAPTER.tags() == {"tier": "small", "reason": "explicit", "domain": "refund", "version": "refund-v2", "category": "refund"}


@pytest.mark.parametrize("bad", [
    {"rules": [{"target": "medium"}]},
    {"rules": [{"target": "small", "sample_rate": 1.5}]},
    {"rules": [{"target": "small", "rate": 0.1}]},
    {"canary": {"margin": 1.0}},
])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValidationError):
        ShadowConfig.model_validate(bad)


def test_tool_calls_agree_by_name_and_parsed_arguments():
    from engines.types import ToolCall
    from shadow.agreement import call_agreement

    a = [ToolCall(id="1", name="f", arguments='{"x": 1, "y": [2]}')]
    assert call_agreement(a, [ToolCall(id="9", name="f", arguments='{"y":[2],"x":1}')]) == 1.0
    assert call_agreement(a, [ToolCall(id="9", name="g", arguments='{"x": 1, "y": [2]}')]) == 0.0
    assert call_agreement(a, [*a, ToolCall(id="2", name="f", arguments="{}")]) == 0.5
    assert call_agreement([], []) == 1.0
