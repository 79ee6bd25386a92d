import math

import numpy as np
import pytest

from router.decision import RoutingQuery, TierLoad
from router.learned import LearnedPolicy, LearnedRoutingConfig
from router.queue import QueueConfig, shift_threshold
from router.thresholds import ShareThreshold, ThresholdConfig, base_threshold


def policy(score, **config):
    cfg = LearnedRoutingConfig.model_validate(config)
    return LearnedPolicy(lambda _text, _category, _asks: score, cfg, ShareThreshold(cfg.thresholds.window))


@pytest.mark.parametrize(
    "score, probability, depth, tier, reason",
    [
        (0.7, 0.5, 0, "large", "learned:above_threshold"),
        (0.3, 0.5, 0, "small", "learned:below_threshold"),
        (0.6, 0.5, 20, "small", "learned:queue_shift"),      # borderline, large tier backed up
        (0.95, 0.5, 20, "large", "learned:must_large"),       # above the floor whatever the queue
        (0.6, 0.5, 3, "large", "learned:above_threshold"),    # within the latency budget
    ],
)
def test_decisions(score, probability, depth, tier, reason):
    p = policy(score, thresholds={"probability": probability},
               queue={"latency_budget_s": 4, "seconds_per_queued_request": 1, "must_large_score": 0.9})
    decision = p.decide(RoutingQuery(text="q"), {"large": TierLoad(running=depth)})
    assert (decision.tier, decision.reason) == (tier, reason)
    assert decision.score == score and decision.queue_depth == depth


def test_category_override_wins():
    p = policy(0.0, thresholds={"category_overrides": {"billing": "large"}})
    d = p.decide(RoutingQuery(text="q", category="billing"), {})
    assert d.tier == "large" and d.reason == "learned:category_override"


@pytest.mark.parametrize(
    "threshold, depth, expected",
    [
        (0.5, 0, 0.5),     # idle
        (0.5, 4, 0.5),     # exactly at budget: no shift
        (0.5, 6, 0.7),     # 1.5x budget: halfway to the floor
        (0.5, 8, 0.9),     # 2x budget: only must-go-large
        (0.5, 100, 0.9),   # never above the floor
        (0.95, 100, 0.95), # a threshold above the floor is not lowered
    ],
)
def test_queue_shift_table(threshold, depth, expected):
    config = QueueConfig(latency_budget_s=4, seconds_per_queued_request=1, must_large_score=0.9)
    assert math.isclose(shift_threshold(threshold, TierLoad(waiting=depth), config).threshold, expected)


def test_queue_shift_disabled_or_unknown_load():
    config = QueueConfig(enabled=False)
    assert shift_threshold(0.5, TierLoad(waiting=1000), config).threshold == 0.5
    assert shift_threshold(0.5, None, QueueConfig()).shifted is False


def test_share_threshold_follows_live_traffic():
    # Trained on scores in [0, 1]; live traffic is shifted up: the share must hold on live.
    share = ShareThreshold(window=500, training_scores=list(np.linspace(0, 1, 101)))
    config = ThresholdConfig(mode="share", large_share=0.2, min_samples=100)
    assert math.isclose(base_threshold(config, share), 0.8)  # training quantile until warm
    live = np.random.RandomState(0).uniform(0.5, 1.0, 500)
    sent = []
    for s in live:
        sent.append(s >= base_threshold(config, share))
        share.observe(s)
    assert abs(np.mean(sent[200:]) - 0.2) < 0.05
    assert base_threshold(config, share) > 0.85


def test_share_zero_sends_nothing_large():
    share = ShareThreshold(window=10, training_scores=[0.1, 0.9])
    assert base_threshold(ThresholdConfig(mode="share", large_share=0.0), share) == math.inf


def test_config_rejects_unknown_keys_and_tiers():
    with pytest.raises(ValueError):
        LearnedRoutingConfig.model_validate({"thresholds": {"probabilty": 0.3}})
    with pytest.raises(ValueError):
        LearnedRoutingConfig.model_validate({"thresholds": {"category_overrides": {"x": "Huge Tier"}}})


@pytest.mark.parametrize(
    "large_depth, small_depth, expected",
    [
        (8, 0, 0.9),    # small idle: the budget is latency_budget_s (4 s), 2x over
        (8, 8, 0.9),    # small wait 4 s: still the budget
        (8, 16, 0.5),   # small wait 8 s = large wait: moving queries would not help
        (8, 32, 0.5),   # small busier than large: nothing moves
        (12, 16, 0.7),  # large 12 s vs small 8 s: halfway
    ],
)
def test_queue_shift_is_bounded_by_the_small_tiers_queue(large_depth, small_depth, expected):
    config = QueueConfig(latency_budget_s=4, seconds_per_queued_request=1, must_large_score=0.9,
                         small_seconds_per_queued_request=0.5)
    shift = shift_threshold(0.5, TierLoad(waiting=large_depth), config, TierLoad(running=small_depth))
    assert math.isclose(shift.threshold, expected)


def test_small_queue_ignored_when_its_cost_is_zero():
    config = QueueConfig(latency_budget_s=4, seconds_per_queued_request=1, must_large_score=0.9,
                         small_seconds_per_queued_request=0)
    assert math.isclose(shift_threshold(0.5, TierLoad(waiting=8), config, TierLoad(running=99)).threshold, 0.9)


def test_share_threshold_is_refreshed_every_few_scores_and_on_config_change():
    share = ShareThreshold(window=100, training_scores=[0.5], refresh=4)
    for s in np.linspace(0, 1, 100):
        share.observe(s)
    first = share.threshold(0.5, 10)
    for _ in range(3):
        share.observe(1.0)
    assert share.threshold(0.5, 10) == first  # fewer than `refresh` new scores: cached
    share.observe(1.0)
    assert share.threshold(0.5, 10) > first  # the 4th new score refreshes the cut
    assert share.threshold(0.1, 10) > share.threshold(0.5, 10)  # a new share target: at once
