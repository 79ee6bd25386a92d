"""`auto` over more than two tiers: one learned score, a rising cut per tier above small."""

import numpy as np
import pytest

from router.decision import RoutingQuery, TierLoad
from router.learned import LearnedPolicy, LearnedRoutingConfig
from router.queue import QueueConfig
from router.rungs import RungConfig, climb, rung_cuts
from router.thresholds import ShareThreshold, ThresholdConfig

THREE = ("small", "large", "frontier")
QUIET = {"enabled": False}


def three_tier(score, upper=None, **thresholds):
    config = LearnedRoutingConfig.model_validate({
        "thresholds": {"mode": "probability", "probability": 0.5, **thresholds}, "queue": QUIET,
        "upper": upper if upper is not None else {"frontier": {"mode": "probability", "probability": 0.8, "queue": QUIET}},
    })
    return LearnedPolicy(lambda _t, _c, _a: score, config, ShareThreshold(config.thresholds.window), THREE)


@pytest.mark.parametrize("score, tier, reason", [
    (0.2, "small", "learned:below_threshold"),
    (0.6, "large", "learned:above_threshold"),
    (0.85, "frontier", "learned:above_threshold"),
])
def test_the_cheapest_tier_whose_cut_the_score_does_not_clear_above(score, tier, reason):
    decision = three_tier(score).decide(RoutingQuery(text="q"), {})
    assert (decision.tier, decision.reason) == (tier, reason)
    assert decision.threshold == {"small": 0.5, "large": 0.5, "frontier": 0.8}[tier]


def test_an_upper_tier_without_a_rung_is_never_picked():
    assert three_tier(0.99, upper={}).decide(RoutingQuery(text="q"), {}).tier == "large"


def test_cuts_rise_with_the_tiers():
    """A bar set below large's would skip large entirely; it is raised to large's."""
    decision = three_tier(0.6, upper={"frontier": {"mode": "probability", "probability": 0.3, "queue": QUIET}})
    assert decision.decide(RoutingQuery(text="q"), {}).tier == "frontier"  # 0.6 clears both 0.5 cuts
    assert three_tier(0.45, upper={"frontier": {"mode": "probability", "probability": 0.3}}).decide(
        RoutingQuery(text="q"), {}).tier == "small"


def test_only_the_tiers_that_can_serve_the_request():
    policy = three_tier(0.9)
    assert policy.decide(RoutingQuery(text="q", tiers=("small", "large")), {}).tier == "large"
    assert policy.decide(RoutingQuery(text="q", tiers=("large",)), {}).tier == "large"
    assert three_tier(0.1).decide(RoutingQuery(text="q", tiers=("large", "frontier")), {}).tier == "large"


def test_a_backed_up_upper_tier_holds_a_borderline_query_one_tier_down():
    queue = {"latency_budget_s": 4, "seconds_per_queued_request": 1, "must_large_score": 0.95}
    policy = three_tier(0.85, upper={"frontier": {"mode": "probability", "probability": 0.8, "queue": queue}})
    busy = policy.decide(RoutingQuery(text="q"), {"frontier": TierLoad(waiting=20)})
    assert (busy.tier, busy.reason, busy.queue_depth) == ("large", "learned:queue_shift", None)
    assert policy.decide(RoutingQuery(text="q"), {"frontier": TierLoad(waiting=2)}).tier == "frontier"


def test_shares_count_from_the_top():
    """large_share 0.3 and frontier's 0.1: the top 10 % of scores go frontier, the next 30 %
    large, the rest small."""
    scores = np.linspace(0.0, 1.0, 1001)
    share = ShareThreshold(2000, list(scores))
    thresholds = ThresholdConfig(mode="share", large_share=0.3)
    cuts = rung_cuts(THREE, thresholds, QueueConfig(enabled=False), {"frontier": RungConfig(share=0.1)}, share, {})
    assert [c.tier for c in cuts] == ["large", "frontier"]
    assert cuts[0].base == pytest.approx(0.6) and cuts[1].base == pytest.approx(0.9)
    served = [getattr(climb(s, cuts, None), "tier", "small") for s in scores]
    assert served.count("frontier") / len(scores) == pytest.approx(0.1, abs=0.01)
    assert served.count("large") / len(scores) == pytest.approx(0.3, abs=0.01)


def test_two_tiers_decide_as_before():
    """No extra tier: the rung ladder is the one large cut it always was."""
    config = LearnedRoutingConfig.model_validate({"thresholds": {"mode": "probability", "probability": 0.5}})
    policy = LearnedPolicy(lambda _t, _c, _a: 0.7, config, ShareThreshold(100))
    decision = policy.decide(RoutingQuery(text="q"), {"large": TierLoad(running=1)})
    assert (decision.tier, decision.threshold, decision.queue_depth) == ("large", 0.5, 1)


def test_a_categorys_own_bars_replace_the_tiers_cuts_for_its_queries():
    config = LearnedRoutingConfig.model_validate({
        "thresholds": {"mode": "probability", "probability": 0.5}, "queue": QUIET,
        "upper": {"frontier": {"mode": "probability", "probability": 0.8, "queue": QUIET}},
        "category_bars": {"Billing": {"large": 0.1, "frontier": 0.3}},
    })
    policy = LearnedPolicy(lambda _t, _c, _a: 0.35, config, ShareThreshold(100), THREE)
    billing = policy.decide(RoutingQuery(text="q", category="billing"), {})
    assert (billing.tier, billing.threshold) == ("frontier", 0.3)
    assert policy.decide(RoutingQuery(text="q", category="refund"), {}).tier == "small"
    with pytest.raises(ValueError):
        LearnedRoutingConfig.model_validate({"category_bars": {"billing": {"large": 1.5}}})


def stepped(score, step_score, probability=0.7, calls=None):
    config = LearnedRoutingConfig.model_validate({
        "thresholds": {"mode": "probability", "probability": 0.5}, "queue": QUIET,
        "upper": {"frontier": {"mode": "share", "share": 0.5, "probability": probability, "queue": QUIET}},
    })

    def step(_t, _c, _a):
        if calls is not None:
            calls.append(1)
        return step_score

    return LearnedPolicy(lambda _t, _c, _a: score, config, ShareThreshold(100), THREE, steps={"frontier": step})


def test_a_step_router_decides_the_climb_above_a_tier_the_query_reached():
    calls = []
    up = stepped(0.6, 0.9, calls=calls).decide(RoutingQuery(text="q"), {})
    assert (up.tier, up.threshold) == ("frontier", 0.7)  # the step's own bar, not the pair score's share
    assert calls == [1]  # scored once, though the climb is read twice (with and without queue shift)
    assert stepped(0.6, 0.2).decide(RoutingQuery(text="q"), {}).tier == "large"
    assert stepped(0.3, 0.99, probability=0.1).decide(RoutingQuery(text="q"), {}).tier == "small"  # large not reached


def test_a_step_router_is_not_asked_for_a_query_that_stays_below():
    calls = []
    stepped(0.1, 0.99, calls=calls).decide(RoutingQuery(text="q"), {})
    assert calls == []


def test_a_categorys_shares_are_met_on_its_own_window():
    config = LearnedRoutingConfig.model_validate({
        "thresholds": {"mode": "probability", "probability": 0.9, "min_samples": 10}, "queue": QUIET,
        "category_shares": {"Billing": {"large": 0.5}},
    })
    scores = iter([])
    window = ShareThreshold(100)
    policy = LearnedPolicy(lambda _t, _c, _a: next(scores), config, ShareThreshold(100), ("small", "large"),
                           category_windows={"billing": window})
    billing, refund = RoutingQuery(text="q", category="billing"), RoutingQuery(text="q", category="refund")
    scores = iter([i / 100 for i in range(100)])  # billing's traffic: uniform scores
    for _ in range(100):
        policy.observe(billing, policy.decide(billing, {}))
    assert len(window) == 100
    scores = iter([0.6, 0.4, 0.6])
    assert [policy.decide(billing, {}).tier for _ in range(2)] == ["large", "small"]  # cut at its median
    assert policy.decide(refund, {}).tier == "small"  # the global probability cut (0.9)


@pytest.mark.parametrize("shares, problem", [
    ({"billing": {"small": 0.5}}, "small is what is left"),
    ({"billing": {"large": 0.7, "frontier": 0.5}}, "more than 1"),
])
def test_category_shares_that_make_no_sense_are_refused(shares, problem):
    with pytest.raises(ValueError, match=problem):
        LearnedRoutingConfig.model_validate({"category_shares": shares})
    with pytest.raises(ValueError, match="both a bar and a share"):
        LearnedRoutingConfig.model_validate({"category_bars": {"billing": {"large": 0.2}},
                                             "category_shares": {"billing": {"large": 0.2}}})


def test_a_categorys_window_outlives_config_rebuilds_and_goes_with_its_shares():
    from router.config import RoutingConfig
    from router.live import PolicyFactory
    from router.loading import LoadedRouter

    factory = PolicyFactory(LoadedRouter("v1", lambda _t, _c, _a: 0.7, [0.1, 0.9]))

    def build(shares):
        config = RoutingConfig.model_validate({"policy": "learned", "learned": {"category_shares": shares}})
        return factory.build(config)

    billing = RoutingQuery(text="q", category="billing")
    policy = build({"billing": {"large": 0.5}})
    policy.observe(billing, policy.decide(billing, {}))
    rebuilt = build({"billing": {"large": 0.4}, "refund": {"large": 0.1}})
    assert len(rebuilt._windows["billing"]) == 1 and len(rebuilt._windows["refund"]) == 0
    assert set(build({})._windows) == set()
