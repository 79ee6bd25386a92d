"""Who may rate an answer (`POST /v1/feedback`), how often, and under which id: the key that
asked (or an admin key), once, within its per-minute budget; another key's answer is the
same 404 as an id never served; a client's `x-request-id` never becomes a journal key."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from gateway.assembly import Edge, Features, ShadowParts, Tiers, build_gateway
from gateway.auth import Authenticator, LocalRateLimiter
from gateway.catalog import TierSpec
from gateway.keys import KeyStore
from gateway.settings import LimitSettings
from shadow.journal import Journal
from tests.support.fake_engine import FakeEngine

CHAT = "/v1/chat/completions"
TIERS = {"small": TierSpec(served_name="tiny", max_model_len=64), "large": TierSpec(served_name="big", max_model_len=128)}


class Same:
    def score(self, a: str, b: str) -> float:
        return float(a == b)


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "shadow.sqlite")


@pytest.fixture
def keys(tmp_path):
    return KeyStore(tmp_path / "keys.sqlite")


@pytest.fixture
def gateway(journal, keys):
    engines = {"small": FakeEngine("tiny", max_model_len=64), "large": FakeEngine("big", max_model_len=128)}
    auth = Authenticator(keys, LocalRateLimiter(), cache_ttl_s=0)  # closed: keys exist below
    return build_gateway(
        Tiers(engines, TIERS), LimitSettings(), edge=Edge(auth=auth),
        features=Features(shadow=ShadowParts(journal, Same())),
    )


@pytest.fixture
def client(gateway):
    with TestClient(gateway.app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def alice(keys):
    return {"authorization": f"Bearer {keys.create('alice')[1]}"}


@pytest.fixture
def mallory(keys):
    return {"authorization": f"Bearer {keys.create('mallory')[1]}"}


@pytest.fixture
def admin(keys):
    return {"authorization": f"Bearer {keys.create('ops', role='admin')[1]}"}


def answered(client, journal, headers, **extra_headers):
    body = {"model": "small", "messages": [{"role": "user", "content": "where is my refund"}], "max_tokens": 4}
    r = client.post(CHAT, json=body, headers={**headers, **extra_headers})
    assert r.status_code == 200, r.text
    response_id = r.json()["id"]
    wait_for(lambda: journal.request(response_id.removeprefix("chatcmpl-")) is not None)
    return response_id


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def rate(client, headers, request_id, rating=1, **extra):
    return client.post("/v1/feedback", json={"request_id": request_id, "rating": rating, **extra}, headers=headers)


def test_the_journal_records_the_key_that_asked(client, journal, keys, alice):
    response_id = answered(client, journal, alice)
    (record,) = [k for k in keys.list() if k.name == "alice"]
    assert journal.request(response_id.removeprefix("chatcmpl-")).key_id == record.id


def test_another_keys_answer_is_the_same_404_as_an_unknown_id(client, journal, alice, mallory):
    response_id = answered(client, journal, alice)
    theirs = rate(client, mallory, response_id, -1)
    unknown = rate(client, mallory, "chatcmpl-" + "0" * 32, -1)
    assert theirs.status_code == unknown.status_code == 404
    same = lambda r, rid: {**r.json()["error"], "message": r.json()["error"]["message"].replace(rid, "<id>")}  # noqa: E731
    assert same(theirs, response_id) == same(unknown, "chatcmpl-" + "0" * 32)
    assert theirs.json()["error"]["code"] == "request_not_found"
    assert journal.feedback(response_id.removeprefix("chatcmpl-")) == []


def test_the_key_that_asked_rates_once(client, journal, alice):
    response_id = answered(client, journal, alice)
    assert rate(client, alice, response_id, 1).status_code == 200
    again = rate(client, alice, response_id, -1)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_rated"
    assert set(again.json()["error"]) == {"message", "type", "param", "code"}
    assert [f.rating for f in journal.feedback(response_id.removeprefix("chatcmpl-"))] == [1]


def test_an_admin_key_may_rate_any_answer(client, journal, alice, admin):
    response_id = answered(client, journal, alice)
    assert rate(client, admin, response_id, -1).status_code == 200
    assert rate(client, alice, response_id, 1).status_code == 200  # the owner's own rating still counts
    ratings = journal.ratings({"tier": "small"})
    assert ratings.n == 1 and ratings.negative == 0  # one answer, its newest rating


def test_a_client_request_id_never_keys_the_journal(client, journal, alice, mallory):
    first = answered(client, journal, alice, **{"x-request-id": "ticket-42"})
    second = answered(client, journal, mallory, **{"x-request-id": "ticket-42"})
    assert first != second and "ticket-42" not in (first, second)
    assert journal.request(first.removeprefix("chatcmpl-")).key_id != journal.request(second.removeprefix("chatcmpl-")).key_id
    assert journal.request("ticket-42") is None
    assert rate(client, mallory, "ticket-42").status_code == 404
    assert rate(client, mallory, first).status_code == 404  # alice's answer stayed hers


def test_feedback_is_rate_limited_per_key(client, gateway, journal, alice, mallory):
    assert gateway.reconfigure({"shadow": {"feedback_per_minute": 2}})
    ids = [answered(client, journal, alice) for _ in range(3)]
    assert [rate(client, alice, rid).status_code for rid in ids[:2]] == [200, 200]
    limited = rate(client, alice, ids[2])
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert limited.json()["error"]["code"] == "rate_limit_feedback"
    assert rate(client, mallory, ids[2]).status_code == 404  # another key's budget is its own


def test_fifty_ratings_of_one_draft_are_one_rated_draft(client, journal, alice):
    response_id = answered(client, journal, alice)
    statuses = [rate(client, alice, response_id, 1, sent_text="x").status_code for _ in range(50)]
    assert statuses.count(200) == 1 and statuses.count(409) + statuses.count(429) == 49
    assert journal.ratings({"tier": "small"}).n == 1


def test_a_responses_api_answer_is_rated_by_its_response_id(client, journal, alice):
    r = client.post("/v1/responses", json={"model": "small", "input": "where is my refund", "max_output_tokens": 16},
                    headers=alice)
    assert r.status_code == 200, r.text
    response_id = r.json()["id"]
    assert response_id.startswith("resp_")
    wait_for(lambda: journal.request(response_id.removeprefix("resp_")) is not None)
    assert rate(client, alice, response_id).status_code == 200
