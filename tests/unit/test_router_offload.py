"""The learned policy's scoring runs off the event loop; its live window is fed after the
decision, on the loop, never by the decision itself."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time

from tests.support.calls import plan_call
from gateway.assembly import Routing, Tiers, build_gateway
from gateway.catalog import TierSpec
from wire.chat import ChatCompletionRequest
from router.live import LiveRouter
from gateway.settings import LimitSettings
from router.decision import RoutingDecision, RoutingQuery
from router.learned import LearnedPolicy, LearnedRoutingConfig
from router.thresholds import ShareThreshold
from tests.support.fake_engine import FakeEngine

SCORE_S = 0.05  # one decision's CPU, spent spinning: on the loop it would stall it this long
TICK_S = 0.005
_BUFFER = bytes(1 << 20)


def slow_score(_text: str, _category: str | None, _asks: object = None) -> float:
    # CPU, not a sleep (the router costs a policy in thread CPU time), spent outside the
    # GIL as numpy's and LightGBM's work is: hashing a large buffer releases it.
    until = time.thread_time() + SCORE_S
    while time.thread_time() < until:
        hashlib.sha256(_BUFFER).digest()
    return 0.4


async def ticker(stop: asyncio.Event) -> float:
    """The longest gap between ticks of a coroutine that wants to run every TICK_S."""
    longest, last = 0.0, time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(TICK_S)
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    return longest


async def test_scoring_does_not_stall_the_event_loop():
    tiers = {"small": TierSpec(served_name="tiny", max_model_len=64),
             "large": TierSpec(served_name="big", max_model_len=128)}
    engines = {"small": FakeEngine("tiny"), "large": FakeEngine("big")}
    gateway = build_gateway(Tiers(engines, tiers), LimitSettings(), routing=Routing(scorer=slow_score))
    request = ChatCompletionRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    )
    stop = asyncio.Event()
    ticks = asyncio.create_task(ticker(stop))
    await asyncio.sleep(TICK_S)
    plans = await asyncio.gather(*(plan_call(gateway, request, f"r{i}") for i in range(10)))
    stop.set()
    longest = await ticks
    assert all(p.decision.reason.startswith("learned:") for p in plans)
    assert longest < 0.04, f"the event loop stalled {longest * 1000:.0f} ms while routing"


def test_the_decision_does_not_feed_the_share_window():
    share = ShareThreshold(window=100)
    policy = LearnedPolicy(lambda _t, _c, _a: 0.7, LearnedRoutingConfig(), share)
    query = RoutingQuery(text="q")
    decision = policy.decide(query, {})
    assert len(share) == 0, "decide() added its score to the live window"
    policy.observe(query, decision)
    assert len(share) == 1


def test_a_category_override_feeds_nothing():
    share = ShareThreshold(window=100)
    config = LearnedRoutingConfig.model_validate({"thresholds": {"category_overrides": {"billing": "large"}}})
    policy = LearnedPolicy(lambda _t, _c, _a: 0.7, config, share)
    query = RoutingQuery(text="q", category="billing")
    policy.observe(query, policy.decide(query, {}))
    assert len(share) == 0


async def test_router_decides_on_a_worker_and_observes_on_the_loop():
    threads: dict[str, int] = {}

    class Spy:
        def decide(self, query, loads):  # noqa: ANN001, ANN201 - the protocol's signature
            threads["decide"] = threading.get_ident()
            return RoutingDecision(tier="small", score=0.2, reason="spy")

        def observe(self, query: RoutingQuery, decision: RoutingDecision) -> None:
            threads["observe"] = threading.get_ident()

    decision = await LiveRouter(Spy()).decide(None, RoutingQuery(text="hi"))
    assert decision.reason == "spy"
    assert threads["observe"] == threading.get_ident() != threads["decide"]


async def test_router_feeds_the_learned_window_once_per_decision():
    share = ShareThreshold(window=100)
    router = LiveRouter(LearnedPolicy(lambda _t, _c, _a: 0.7, LearnedRoutingConfig(), share))
    for _ in range(3):
        await router.decide(None, RoutingQuery(text="q"))
    await router.decide("large", RoutingQuery(text="q"))  # explicit: not scored
    assert len(share) == 3


class _Clocked:
    """A policy that reports which thread decided and takes `cost_s` of (fake) time."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def decide(self, query, loads):  # noqa: ANN001, ANN201 - the protocol's signature
        self.threads.append(threading.get_ident())
        return RoutingDecision(tier="small", score=0.2, reason="clocked")


async def test_a_cheap_policy_decides_inline_after_its_first_measured_decision():
    policy = _Clocked()
    router = LiveRouter(policy, inline_budget_s=10.0)  # any measured cost is cheap
    for _ in range(3):
        await router.decide(None, RoutingQuery(text="q"))
    loop_thread = threading.get_ident()
    assert policy.threads[0] != loop_thread, "an unmeasured policy must start off the loop"
    assert policy.threads[1:] == [loop_thread, loop_thread]


async def test_a_slow_policy_stays_on_the_threads():
    policy = _Clocked()
    router = LiveRouter(policy, inline_budget_s=0.0)  # nothing is cheap enough
    for _ in range(3):
        await router.decide(None, RoutingQuery(text="q"))
    assert threading.get_ident() not in policy.threads


async def test_a_swapped_policy_is_measured_again_off_the_loop():
    first, second = _Clocked(), _Clocked()
    router = LiveRouter(first, inline_budget_s=10.0)
    for _ in range(2):
        await router.decide(None, RoutingQuery(text="q"))
    router.replace_policy(second)
    await router.decide(None, RoutingQuery(text="q"))
    assert second.threads[0] != threading.get_ident()


def test_the_cost_estimate_follows_the_decisions():
    from router.live import DecisionCost

    cost = DecisionCost()
    assert not cost.cheap(1.0), "unknown cost counts as slow"
    cost.add(0.001)
    assert cost.cheap(0.002)
    for _ in range(50):
        cost.add(0.010)
    assert not cost.cheap(0.002)


class _Waiting(_Clocked):
    """Wall time without CPU: what a decision's GIL waits look like on a busy replica."""

    def decide(self, query, loads):  # noqa: ANN001, ANN201 - the protocol's signature
        time.sleep(0.02)
        return super().decide(query, loads)


async def test_a_decision_is_costed_in_cpu_not_in_wall_time():
    policy = _Waiting()
    router = LiveRouter(policy, inline_budget_s=0.005)  # 20 ms of wall, well under 5 ms of CPU
    for _ in range(2):
        await router.decide(None, RoutingQuery(text="q"))
    assert policy.threads[1] == threading.get_ident(), "waiting is not cost: the second decision runs inline"
