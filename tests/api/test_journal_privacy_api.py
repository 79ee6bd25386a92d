"""The answer journal through the gateway: a user's e-mail in the question, the answer, the
pair, the text sent and the comment is redacted unless the category opted in to full text;
`none` keeps only what the canaries and the rollout count, and feedback still works."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from gateway.assembly import Features, ShadowParts, Tiers, build_gateway
from gateway.catalog import TierSpec
from gateway.settings import LimitSettings
from shadow.journal import Journal
from tests.support.fake_engine import FakeEngine

CHAT = "/v1/chat/completions"
EMAIL = "jane.doe@example.com"
TIERS = {"small": TierSpec(served_name="tiny", max_model_len=256), "large": TierSpec(served_name="big", max_model_len=256)}


class Same:
    def score(self, a: str, b: str) -> float:
        return float(a == b)


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "shadow.sqlite")


@pytest.fixture
def gateway(journal):
    engines = {"small": FakeEngine("tiny", max_model_len=256), "large": FakeEngine("big", max_model_len=256)}
    gateway = build_gateway(Tiers(engines, TIERS), LimitSettings(), features=Features(shadow=ShadowParts(journal, Same())))
    assert gateway.reconfigure({"shadow": {
        "rules": [{"tier": "small", "target": "large", "sample_rate": 1.0}],
        "journal": {"categories": {"vip": "full", "quiet": "none"}},
    }})
    return gateway


@pytest.fixture
def client(gateway):
    with TestClient(gateway.app, raise_server_exceptions=False) as client:
        yield client


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := predicate()):
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def ask(client, journal, category=None):
    body = {"model": "small", "messages": [{"role": "user", "content": f"my address is {EMAIL} ok"}],
            "max_tokens": 8, "user": EMAIL, "metadata": {"category": category} if category else {}}
    r = client.post(CHAT, json=body)
    assert r.status_code == 200, r.text
    rid = r.headers["x-request-id"]
    record = wait_for(lambda: journal.request(rid))
    (pair,) = wait_for(lambda: journal.pairs_of([rid]))
    return r, record, pair


def test_the_default_journal_redacts_personal_data(client, journal):
    r, record, pair = ask(client, journal)
    assert EMAIL in r.json()["choices"][0]["message"]["content"]  # the answer itself is untouched
    stored = [record.prompt, record.draft, pair.prompt, pair.primary_text, pair.shadow_text, record.tags["client.user"]]
    assert all(EMAIL not in text for text in stored) and "[email]" in record.prompt and "[email]" in record.draft
    rated = client.post("/v1/feedback", json={"request_id": r.json()["id"], "rating": 1,
                                             "sent_text": r.json()["choices"][0]["message"]["content"],
                                             "comment": f"customer {EMAIL} was happy"})
    assert rated.status_code == 200 and rated.json()["match"] == 1.0  # scored on the redacted texts
    (feedback,) = journal.feedback(record.request_id)
    assert EMAIL not in feedback.sent_text and EMAIL not in feedback.comment


def test_a_category_opted_in_keeps_the_full_text(client, journal):
    _, record, pair = ask(client, journal, "VIP")
    assert EMAIL in record.prompt and EMAIL in record.draft and EMAIL in pair.primary_text


def test_none_keeps_the_figures_and_no_text(client, journal):
    r, record, pair = ask(client, journal, "quiet")
    assert (record.prompt, record.draft, pair.prompt, pair.primary_text, pair.shadow_text) == ("", "", "", "", "")
    assert "client.user" not in record.tags and record.tags["category"] == "quiet"
    assert pair.agreement == 1.0  # scored on the whole answers before they were dropped
    rated = client.post("/v1/feedback", json={"request_id": r.json()["id"], "rating": -1,
                                             "sent_text": "anything", "comment": "no"})
    assert rated.status_code == 200 and rated.json()["match"] is None  # no draft to compare
    (feedback,) = journal.feedback(record.request_id)
    assert (feedback.rating, feedback.sent_text, feedback.comment) == (-1, None, None)
