"""Grounded requests through the in-process app record which documents served them (the
KB usage journal), and retrieval failures count per category (the KB-rot canary)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from starlette.testclient import TestClient

from gateway.assembly import Edge, Features, Tiers, build_gateway
from gateway.catalog import TierSpec
from retrieval.grounding import Grounder
from retrieval.usage_journal import usage_journal
from gateway.live_config import LiveConfig
from gateway.metrics import GatewayMetrics
from gateway.settings import LimitSettings
from retrieval.config import GroundingConfig, RotSettings
from tests.support.fake_engine import FakeEngine
from tests.support.retrieval import ScriptedReranker, first_stage

TIERS = {"small": TierSpec(served_name="tiny", max_model_len=4096), "large": TierSpec(served_name="big", max_model_len=4096)}
REFUND_QUESTION = "how can I get a refund for my purchase"
NONSENSE = "zebra quantum tulip"


class Rig:
    def __init__(self, tmp_path, rot: dict | None = None, **grounding) -> None:
        engines = {
            "small": FakeEngine("tiny", max_model_len=4096, token_delay_s=0.0),
            "large": FakeEngine("big", max_model_len=4096, token_delay_s=0.0),
        }
        self.metrics = GatewayMetrics()
        self.journal = usage_journal(RotSettings(usage=tmp_path / "usage.sqlite", **(rot or {})), self.metrics.grounding, self.metrics.background_failures_of)
        grounder = Grounder(first_stage(tmp_path), ScriptedReranker(lambda p: 0.0), self.metrics.grounding, usage=self.journal)
        live = LiveConfig(grounding=GroundingConfig(**{"rerank": "off", "min_relevance": 0.3, **grounding}))
        self.gateway = build_gateway(Tiers(engines, TIERS), LimitSettings(), config=live, edge=Edge(metrics=self.metrics), features=Features(grounder=grounder))

    def sample(self, name: str, labels: dict[str, str]) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


def ask(client, question: str, category: str | None, stream: bool = False):
    body = {"model": "small", "messages": [{"role": "user", "content": question}], "max_tokens": 5,
            "stream": stream, "grounding": True}
    if category is not None:
        body["metadata"] = {"category": category}
    return client.post("/v1/chat/completions", json=body)


def test_a_grounded_answer_records_the_documents_that_served_it(tmp_path):
    rig = Rig(tmp_path)
    with TestClient(rig.gateway.app) as client:
        plain = ask(client, REFUND_QUESTION, "Refund")
        streamed = ask(client, REFUND_QUESTION, "refund", stream=True)
        assert plain.status_code == streamed.status_code == 200
        assert rig.journal.store.rows()["queries"] == 0  # written in the background, not on the request
    # Leaving the client stops the app: the journal's last flush writes what was queued.
    store = rig.journal.store
    since = datetime.now(timezone.utc) - timedelta(days=1)
    served = plain.headers["x-gateway-context-chunks"].split(",")
    doc_ids = {chunk.split("#")[0] for chunk in served}
    assert store.queries(since) == 2
    assert store.document_volume(since) == {doc: 2 for doc in doc_ids}
    assert [(c.category, c.queries, c.failures) for c in store.categories(since)] == [("refund", 2, 0)]
    assert rig.sample("gateway_grounded_requests_total", {"context": "first-stage", "category": "refund"}) == 2


def test_a_retrieval_failure_counts_for_its_category_and_is_journaled(tmp_path):
    rig = Rig(tmp_path, min_relevance=0.5)
    with TestClient(rig.gateway.app) as client:
        failed = ask(client, NONSENSE, "refund")
        grounded = ask(client, REFUND_QUESTION, "refund")
        unknown = ask(client, NONSENSE, "made-up-category-123")
    assert failed.headers["x-gateway-context"] == "none" and grounded.headers["x-gateway-context"] != "none"
    assert unknown.status_code == 200
    assert rig.sample("gateway_retrieval_failures_total", {"reason": "low_relevance", "category": "refund"}) == 1
    assert rig.sample("gateway_grounded_requests_total", {"context": "none", "category": "refund"}) == 1
    # A category the gateway does not know is one bounded label, not a series per client string.
    assert rig.sample("gateway_retrieval_failures_total", {"reason": "low_relevance", "category": "other"}) == 1
    outcomes = {c.category: (c.queries, c.failures) for c in rig.journal.store.categories(datetime(2000, 1, 1, tzinfo=timezone.utc))}
    assert outcomes == {"refund": (2, 1), "other": (1, 1)}


def test_the_journal_stays_bounded_by_its_queue(tmp_path):
    rig = Rig(tmp_path, rot={"queue_size": 1, "flush_interval_s": 60})
    with TestClient(rig.gateway.app) as client:
        for _ in range(3):
            assert ask(client, REFUND_QUESTION, "refund").status_code == 200
        assert rig.journal.pending == 1  # one waits for the next flush, two were dropped
    assert rig.sample("gateway_retrieval_usage_dropped_total", {}) == 2
    assert rig.journal.store.rows()["queries"] == 1
