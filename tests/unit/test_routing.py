import pytest

from gateway.catalog import ModelCatalog, ModelTarget, TierSpec
from gateway.errors import ModelNotFound
from router.live import LiveRouter
from router.baseline import BaselinePolicy, BaselineRuleConfig
from router.decision import RoutingQuery

CATALOG = ModelCatalog({
    "small": TierSpec(served_name="tiny", max_model_len=128),
    "large": TierSpec(served_name="big", max_model_len=256),
})


def test_catalog_resolves_auto_tiers_and_served_names():
    assert CATALOG.resolve("auto") == ModelTarget(tier=None)
    assert CATALOG.resolve("small").tier == "small"
    assert CATALOG.resolve("big").tier == "large"


def test_catalog_unknown_model_names_the_param():
    with pytest.raises(ModelNotFound) as info:
        CATALOG.resolve("gpt-9")
    assert info.value.param == "model" and "tiny" in info.value.message


def test_baseline_routes_long_prompts_large_and_says_it_is_the_baseline():
    policy = BaselinePolicy(BaselineRuleConfig(long_prompt_chars=100, threshold=0.5))
    short = policy.decide(RoutingQuery(text="hi"), {})
    long = policy.decide(RoutingQuery(text="x" * 60), {})
    assert (short.tier, long.tier) == ("small", "large")
    assert short.reason.startswith("baseline:") and long.threshold == 0.5


def test_baseline_counts_compound_questions():
    policy = BaselinePolicy(BaselineRuleConfig(long_prompt_chars=1000, threshold=0.5))
    assert policy.decide(RoutingQuery(text="a? b? c?"), {}).tier == "large"


async def test_explicit_target_bypasses_policy_and_live_swap_applies():
    router = LiveRouter(BaselinePolicy(BaselineRuleConfig(threshold=1.0)))
    assert (await router.decide("large", RoutingQuery(text="hi"))).reason == "explicit"
    assert (await router.decide(None, RoutingQuery(text="hi"))).tier == "small"
    router.replace_policy(BaselinePolicy(BaselineRuleConfig(threshold=0.0)))
    assert (await router.decide(None, RoutingQuery(text="hi"))).tier == "large"


async def test_own_dispatches_count_before_the_next_poll():
    from router.decision import TierLoad
    seen = []

    class Spy:
        def decide(self, query, loads):
            seen.append(loads.get("large"))
            return BaselinePolicy(BaselineRuleConfig()).decide(query, loads)

    router = LiveRouter(Spy(), loads=lambda: {"large": TierLoad(running=1)})
    for _ in range(3):
        router.dispatched("large", +1)
    await router.decide(None, RoutingQuery(text="hi"))
    assert seen[-1].depth == 3
    for _ in range(3):
        router.dispatched("large", -1)
    await router.decide(None, RoutingQuery(text="hi"))
    assert seen[-1].depth == 1  # polled engine state wins when it knows more
