"""A client's `metadata.category` becomes a metric label only when the gateway knows it:
random categories add no series beyond a bounded set (the rest is `other`)."""

from __future__ import annotations

import random
import string

import httpx
import pytest
from starlette.testclient import TestClient

from gateway.assembly import Features, ShadowParts, Tiers, build_gateway
from gateway.catalog import TierSpec
from gateway.labels import OTHER, CategoryLabels
from gateway.live_config import LiveConfig
from gateway.settings import LimitSettings
from shadow.journal import FeedbackRecord, RequestRecord
from tests.support.fake_engine import FakeEngine

TIERS = {"small": TierSpec(served_name="tiny", max_model_len=64),
         "large": TierSpec(served_name="big", max_model_len=128)}


class Overlap:
    def score(self, a: str, b: str) -> float:
        return 0.5


class MemoryStore:
    """The two calls feedback makes, in memory: 1,000 SQLite commits would take seconds."""

    def __init__(self) -> None:
        self.records: dict[str, RequestRecord] = {}
        self.ratings: list[FeedbackRecord] = []

    def request(self, request_id: str) -> RequestRecord | None:
        return self.records.get(request_id)

    def add_feedback(self, record: FeedbackRecord) -> None:
        self.ratings.append(record)


class Directory:
    def __init__(self, *domains: str) -> None:
        self.domains = domains

    def active(self) -> dict[str, object]:
        return {d: object() for d in self.domains}


def random_category(draw: random.Random) -> str:
    return "".join(draw.choices(string.ascii_letters, k=12))


def series(gateway, name: str) -> list[dict[str, str]]:
    return [s.labels for m in gateway.metrics.registry.collect() for s in m.samples if s.name == name]


def test_known_categories_come_from_the_live_config_and_the_live_adapters():
    config = LiveConfig.parse({
        "routing": {"learned": {"thresholds": {"category_overrides": {"Billing": "large"}}}},
        "shadow": {"rules": [{"category": "vip", "target": "large"}]},
        "grounding": {"domains": ["refund"]},
    })
    labels = CategoryLabels(lambda: config, Directory("shipping"))  # type: ignore[arg-type]
    assert labels.known() == {"billing", "vip", "refund", "shipping"}
    assert [labels.label(c) for c in ("REFUND", "vip", "shipping", "nope", None, "")] == [
        "refund", "vip", "shipping", OTHER, "", ""
    ]


def test_a_config_push_changes_the_known_set_at_once():
    configs = [LiveConfig.parse({"grounding": {"domains": ["refund"]}})]
    labels = CategoryLabels(lambda: configs[-1])
    assert labels.label("invoice") == OTHER
    configs.append(LiveConfig.parse({"grounding": {"domains": ["refund", "invoice"]}}))
    assert labels.label("invoice") == "invoice"


async def test_a_thousand_random_categories_add_a_bounded_number_of_feedback_series():
    store = MemoryStore()
    engines = {"small": FakeEngine("tiny"), "large": FakeEngine("big")}
    gateway = build_gateway(Tiers(engines, TIERS), LimitSettings(), features=Features(shadow=ShadowParts(store, Overlap())))  # type: ignore[arg-type]
    assert gateway.reconfigure({"shadow": {"feedback_per_minute": 10_000}})  # one rater, 1,003 ratings
    draw = random.Random(7)
    categories = [random_category(draw) for _ in range(1000)] + ["refund", "Refund", None]
    for i, category in enumerate(categories):
        tags = {"tier": "small"} | ({"category": category} if category else {})
        store.records[f"r{i}"] = RequestRecord(request_id=f"r{i}", target="small", tags=tags, prompt="p", draft="d")
    # In-process, without the lifespan: no background task touches the store.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(gateway.app), base_url="http://gw") as client:
        for i in range(len(categories)):
            response = await client.post("/v1/feedback", json={"request_id": f"r{i}", "rating": 1, "sent_text": "d"})
            assert response.status_code == 200
    seen = {labels["category"] for labels in series(gateway, "gateway_feedback_total")}
    assert seen == {OTHER, "refund", ""}
    known = CategoryLabels(lambda: gateway.config).known()
    assert len({s["category"] for s in series(gateway, "gateway_feedback_match_count")}) <= len(known) + 2


@pytest.mark.parametrize("category, label", [("refund", "refund"), ("Refund", "refund"), ("zq-unheard-of", OTHER)])
def test_feedback_labels_an_answer_by_its_known_category(tmp_path, category, label):
    from shadow.journal import Journal

    engines = {"small": FakeEngine("tiny"), "large": FakeEngine("big")}
    store = Journal(tmp_path / "shadow.sqlite")
    gateway = build_gateway(Tiers(engines, TIERS), LimitSettings(), features=Features(shadow=ShadowParts(store, Overlap())))
    store.add_request(RequestRecord(
        request_id="r1", target="small", tags={"tier": "small", "category": category}, prompt="p", draft="d",
    ))
    with TestClient(gateway.app) as client:
        assert client.post("/v1/feedback", json={"request_id": "r1", "rating": -1}).status_code == 200
    value = gateway.metrics.registry.get_sample_value(
        "gateway_feedback_total", {"tier": "small", "adapter": "", "category": label, "rating": "-1"}
    )
    assert value == 1.0
