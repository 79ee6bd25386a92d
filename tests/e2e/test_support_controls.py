"""Support controls on the real app, through the official openai client: per-category
rollout modes set over the admin API and the CLI (hand-off for `off`, the mode header,
drafts journaled, feedback on a draft in the rollout status, the promotion gate), and the
answerability gate asked for per request (`gate: true`).

Each test uses its own category: every other request keeps the default mode (`auto`)."""

from __future__ import annotations

from functools import partial

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from shadow.journal import Journal

from tests.support.waiting import wait_for as wait_until

pytestmark = pytest.mark.e2e

QUESTION = "How can I get a refund for my order?"
POLL_TIMEOUT_S = 30.0  # a change reaches every ingress replica within its poll (1 s)


def category(name: str) -> str:
    return f"e2e-{name}-{uuid.uuid4().hex[:6]}"


def ask(client, text: str, cat: str | None = None, **extra):
    return client.chat.completions.with_raw_response.create(
        model="small", messages=[{"role": "user", "content": text}], max_tokens=24, temperature=0,
        metadata={"category": cat} if cat else None, **extra,
    )


wait_for = partial(wait_until, timeout=POLL_TIMEOUT_S, every=0.5)


def mode_of(client, cat: str) -> str:
    return ask(client, QUESTION, cat).headers["x-gateway-mode"]


def handoff_text(admin) -> str:
    return admin.get("/admin/config").json()["config"]["support"]["handoff_text"]


def status_of(admin, cat: str) -> dict:
    statuses = admin.get("/admin/rollout").json()["categories"]
    return next(s for s in statuses if s["category"] == cat)


def test_off_category_gets_the_handoff_without_a_tier(client, admin):
    cat = category("off")
    r = admin.post("/admin/rollout/demote", json={"category": cat, "to": "off", "note": "e2e"})
    assert r.status_code == 200, r.text
    assert r.json()["event"]["from_mode"] == "auto" and r.json()["event"]["to_mode"] == "off"
    raw = wait_for(lambda: (x := ask(client, QUESTION, cat)).headers["x-gateway-mode"] == "off" and x)
    completion = raw.parse()
    assert "x-gateway-tier" not in raw.headers
    assert completion.choices[0].message.content == handoff_text(admin)
    assert completion.choices[0].finish_reason == "stop" and completion.usage.total_tokens == 0
    with client.chat.completions.with_streaming_response.create(
        model="small", messages=[{"role": "user", "content": QUESTION}], max_tokens=24, stream=True,
        metadata={"category": cat},
    ) as response:
        assert response.headers["x-gateway-mode"] == "off"
        chunks = [c for c in response.parse() if c.choices]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == handoff_text(admin)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_draft_is_answered_journaled_rated_and_shown_in_status(client, admin, http, shadow_store):
    cat = category("draft")
    assert admin.post("/admin/rollout/demote", json={"category": cat}).json()["status"]["mode"] == "draft"
    raw = wait_for(lambda: (x := ask(client, QUESTION, cat)).headers["x-gateway-mode"] == "draft" and x)
    assert raw.headers["x-gateway-tier"] == "small"
    draft = raw.parse().choices[0].message.content
    assert draft.strip()
    request_id = raw.parse().id.removeprefix("chatcmpl-")  # the gateway's id (x-request-id is Ray's)
    wait_for(lambda: Journal(shadow_store).request(request_id))
    record = Journal(shadow_store).request(request_id)
    assert record.tags["mode"] == "draft" and record.tags["rollout_category"] == cat
    rated = http.post("/v1/feedback", json={"request_id": raw.parse().id, "rating": 1, "sent_text": draft})
    assert rated.status_code == 200, rated.text
    status = status_of(admin, cat)
    assert status["mode"] == "draft" and status["drafts"]["n"] == 1
    assert status["drafts"]["match_rate"] == 1.0 and status["drafts"]["negative_share"] == 0.0
    assert status["promotion"]["cleared"] is False and "1 rated drafts <" in status["promotion"]["why"]
    refused = admin.post("/admin/rollout/promote", json={"category": cat})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "gate_not_cleared"
    forced = admin.post("/admin/rollout/promote", json={"category": cat, "force": True, "note": "e2e"})
    assert forced.status_code == 200 and forced.json()["event"]["evidence"]["forced"] is True
    wait_for(lambda: mode_of(client, cat) == "auto")
    events = admin.get("/admin/rollout/events", params={"category": cat}).json()["events"]
    assert [(e["from_mode"], e["to_mode"]) for e in events] == [("auto", "draft"), ("draft", "auto")]


def gateway_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deployments.cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_cli_status_and_promote_reach_the_running_app(client, e2e_cache, shadow_store):
    cat = category("cli")
    files = ["--state", str(Path(e2e_cache) / "rollout" / "state.json"), "--store", str(shadow_store)]
    done = gateway_cli("rollout", "demote", cat, "--to", "off", *files)
    assert done.returncode == 0, done.stderr
    wait_for(lambda: mode_of(client, cat) == "off")
    done = gateway_cli("rollout", "promote", cat, *files)  # off -> draft
    assert done.returncode == 0 and "off -> draft" in done.stdout, done.stderr
    wait_for(lambda: mode_of(client, cat) == "draft")
    status = gateway_cli("rollout", "status", "--json", *files)
    assert status.returncode == 0, status.stderr
    mine = [c for c in json.loads(status.stdout)["categories"] if c["category"] == cat]
    assert mine and mine[0]["mode"] == "draft"
    events = gateway_cli("rollout", "events", "--category", cat, "--state", files[1])
    assert events.stdout.count(cat) == 2


def test_answerability_gate_on_request(client, admin):
    """The ingress loads the trained classifier (`gateway models prepare`): gated messages get
    the hand-off with the class in `x-gateway-gate` and no tier; a real question is answered."""
    for text, label in (("hey, how are you doing today?", "chitchat"), ("when will this be fixed?", "no_context")):
        gated = ask(client, text, extra_body={"gate": True})
        assert gated.headers["x-gateway-gate"] == label
        assert "x-gateway-tier" not in gated.headers
        assert gated.parse().choices[0].message.content == handoff_text(admin)
        assert gated.parse().choices[0].finish_reason == "stop"
    answered = ask(client, QUESTION, extra_body={"gate": True})
    assert "x-gateway-gate" not in answered.headers and answered.headers["x-gateway-tier"] == "small"
    skipped = ask(client, "hey, how are you doing today?", extra_body={"gate": False})
    assert "x-gateway-gate" not in skipped.headers and skipped.headers["x-gateway-tier"] == "small"
