"""Answer flags in-process: a sampled answer is checked after it was sent, its flags are
stored with the request id and counted; the answer and its latency never wait for the
check; a full queue drops and counts; a broken store is counted, never raised."""

from __future__ import annotations

import threading
import time

import pytest
from starlette.testclient import TestClient

from gateway.assembly import Edge, Features, ShadowParts, Tiers, build_gateway
from gateway.catalog import TierSpec
from retrieval.grounding import Grounder
from gateway.live_config import LiveConfig
from gateway.metrics import GatewayMetrics
from gateway.settings import LimitSettings
from retrieval.config import GroundingConfig
from shadow.journal import Journal
from tests.support.fake_engine import FakeEngine
from tests.support.retrieval import ScriptedReranker, first_stage

CHAT = "/v1/chat/completions"
TIERS = {"small": TierSpec(served_name="tiny", max_model_len=4096), "large": TierSpec(served_name="big", max_model_len=4096)}
EMAIL_MESSAGE = "Please repeat my address jane.doe@example.com back to me"


class SameText:
    def score(self, a: str, b: str) -> float:
        return float(a == b)


class HeldSupport:
    """Scores every claim 0 (unsupported) once released; records what it was asked."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.evidence: list[list[str]] = []

    def support(self, claims, evidence):
        self.entered.set()
        self.release.wait(30)
        self.evidence.append(list(evidence))
        return [0.0 for _ in claims]


class Rig:
    def __init__(self, tmp_path, **flags) -> None:
        self.store = Journal(tmp_path / "shadow.sqlite")
        self.support = HeldSupport()
        self.metrics = GatewayMetrics()
        engines = {"small": FakeEngine("tiny", max_model_len=4096), "large": FakeEngine("big", max_model_len=4096)}
        grounder = Grounder(first_stage(tmp_path), ScriptedReranker(lambda p: 0.0), self.metrics.grounding)
        live = LiveConfig(grounding=GroundingConfig(domains=[], rerank="off", top_k=1),
                          flags={"enabled": True, "sample_rate": 1.0, **flags})
        self.gateway = build_gateway(Tiers(engines, TIERS), LimitSettings(), config=live, edge=Edge(metrics=self.metrics), features=Features(grounder=grounder, shadow=ShadowParts(self.store, SameText(), flag_support=self.support)))

    def count(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0

    def checks(self, outcome: str) -> float:
        return self.count("gateway_flag_checks_total", outcome=outcome)


@pytest.fixture
def rig(tmp_path):
    return Rig(tmp_path)


def ask(client, text=EMAIL_MESSAGE, stream=False, grounding=False, category="refund", max_tokens=12):
    body = {"model": "small", "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens,
            "stream": stream, "grounding": grounding, "metadata": {"category": category}}
    return client.post(CHAT, json=body)


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_an_echoed_email_is_stored_as_a_pii_flag_and_counted(rig):
    with TestClient(rig.gateway.app) as client:
        r = ask(client)
        assert r.status_code == 200 and "jane.doe@example.com" in r.json()["choices"][0]["message"]["content"]
        wait_for(lambda: rig.checks("flagged") == 1)  # counted once stored
    (flag,) = rig.store.flags()
    assert flag.request_id == r.headers["x-request-id"]
    assert (flag.kind, flag.category, flag.tier, flag.score) == ("pii", "refund", "small", 1.0)
    assert flag.detail == "email j***@example.com (echoed from the customer's message)"
    # The metric's category is bounded: "refund" is no known category of this gateway.
    assert rig.count("gateway_answer_flags_total", category="other", kind="pii") == 1


def test_a_streamed_answer_is_checked_once_it_ended(rig):
    with TestClient(rig.gateway.app) as client:
        r = ask(client, stream=True)
        assert r.status_code == 200 and "data: [DONE]" in r.text
        (flag,) = wait_for(rig.store.flags)
    assert flag.kind == "pii" and flag.request_id == r.headers["x-request-id"]


def test_the_answer_and_its_latency_do_not_wait_for_the_check(tmp_path):
    rig = Rig(tmp_path)
    plain = Rig(tmp_path / "off", enabled=False)
    with TestClient(plain.gateway.app) as client:
        expected = ask(client, "how can I get a refund for my purchase", grounding=True).json()
    with TestClient(rig.gateway.app) as client:
        started = time.monotonic()
        r = ask(client, "how can I get a refund for my purchase", grounding=True)
        elapsed = time.monotonic() - started
        assert rig.support.entered.wait(10)  # the check runs, held, after the answer came back
        assert elapsed < 5 and rig.store.flags() == []
        assert r.json()["choices"] == expected["choices"] and r.json()["usage"] == expected["usage"]
        rig.support.release.set()
        (flag,) = wait_for(lambda: rig.store.flags(kinds=["unfaithful"]))
    chunk = r.headers["x-gateway-context-chunks"]
    assert flag.request_id == r.headers["x-request-id"] and chunk in flag.detail
    assert plain.checks("flagged") + plain.checks("clean") == 0  # flags off: nothing checked


def test_a_full_queue_drops_the_check_and_counts_it(tmp_path):
    rig = Rig(tmp_path, queue_size=1)
    with TestClient(rig.gateway.app) as client:
        ask(client, "how can I get a refund", grounding=True)
        assert rig.support.entered.wait(10)  # the one worker is held
        ask(client, "how can I get a refund", grounding=True)  # waits in the queue
        r = ask(client, "how can I get a refund", grounding=True)  # no room: dropped
        assert r.status_code == 200
        assert rig.checks("dropped") == 1
        rig.support.release.set()
        wait_for(lambda: rig.checks("flagged") == 2)


def test_sampling_and_categories_choose_what_is_checked(tmp_path):
    rig = Rig(tmp_path, categories=["billing"])
    with TestClient(rig.gateway.app) as client:
        ask(client, category="refund")
        assert rig.gateway.reconfigure({"flags": {"enabled": True, "sample_rate": 0.0}})
        ask(client, category="billing")
        assert rig.gateway.reconfigure({"flags": {"enabled": True, "sample_rate": 1.0, "categories": ["billing"]}})
        r = ask(client, category="billing")
        wait_for(lambda: rig.checks("flagged") == 1)
    (flag,) = rig.store.flags()
    assert flag.request_id == r.headers["x-request-id"] and flag.category == "billing"
    assert rig.checks("clean") == 0
    assert rig.count("gateway_answer_flags_total", category="billing", kind="pii") == 1  # a flags category is known


def test_a_failing_store_is_counted_and_the_answer_still_served(rig, monkeypatch):
    def broken(records):
        raise OSError("disk full (injected)")

    monkeypatch.setattr(rig.store, "add_flags", broken)
    with TestClient(rig.gateway.app) as client:
        r = ask(client)
        assert r.status_code == 200
        wait_for(lambda: rig.checks("failed") == 1)
    assert rig.count("gateway_answer_flags_total", category="refund", kind="pii") == 0


def test_an_invalid_flags_config_is_rejected_and_the_last_good_kept(rig):
    assert not rig.gateway.reconfigure({"flags": {"sample_rate": 2}})
    assert not rig.gateway.reconfigure({"flags": {"promise": {"allowed_durations": ["soon"]}}})
    assert rig.gateway.config.flags.sample_rate == 1.0
    assert "flags.sample_rate" in rig.gateway.state.rejected.message or "soon" in rig.gateway.state.rejected.message
