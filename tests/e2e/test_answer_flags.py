"""Answer flags on the real app: an answer that repeats the customer's e-mail address is
flagged (pii, echoed) after it was sent, stored with its request id in the shadow store,
listed by `gateway flags --json`, and counted in /metrics.

The e2e app checks every answer of category `flags-e2e` (conftest: GATEWAY_FLAGS, the
initial live `flags` section; `GET /admin/config` shows it in force). Small models do not
always follow "repeat this", so the test asks in a few ways, on both tiers, and uses the
first answer that contains the address; a text completion of a repeated line is the
most reliable of them.
"""

from __future__ import annotations

from functools import partial

import json
import subprocess
import sys
import time

import pytest

from shadow.journal import Journal
from tests.e2e.conftest import FLAGS_CATEGORY

from tests.support.waiting import wait_for as wait_until

pytestmark = pytest.mark.e2e

EMAIL = "jane.doe@example.com"
METADATA = {"metadata": {"category": FLAGS_CATEGORY}, "gate": False}


wait_for = partial(wait_until, timeout=120.0, every=0.5)


def _completion(client, model: str):
    prompt = f"Contact: {EMAIL}\nContact: {EMAIL}\nContact: {EMAIL}\nContact:"
    raw = client.completions.with_raw_response.create(
        model=model, prompt=prompt, max_tokens=16, temperature=0, extra_body=METADATA,
    )
    return raw.parse().id.removeprefix("cmpl-"), raw.parse().choices[0].text


def _chat(client, model: str):
    text = f"Repeat this text exactly, word for word, and nothing else: My email address is {EMAIL}"
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], max_tokens=32, temperature=0,
        extra_body=METADATA,
    )
    return raw.parse().id.removeprefix("chatcmpl-"), raw.parse().choices[0].message.content or ""


def _echoing_answer(client) -> str:
    """The request id of the first answer that contains the address."""
    answers = []
    for ask, model in ((_completion, "large"), (_completion, "small"), (_chat, "small"), (_chat, "large")):
        request_id, text = ask(client, model)
        answers.append((model, text))
        if EMAIL in text:
            return request_id
    raise AssertionError(f"no tier repeated the address: {answers}")


def test_an_echoed_email_is_flagged_stored_and_listed(client, admin, http, shadow_store):
    flags_config = admin.get("/admin/config").json()["config"]["flags"]
    assert flags_config["enabled"] and flags_config["sample_rate"] == 1.0
    assert FLAGS_CATEGORY in flags_config["categories"]

    request_id = _echoing_answer(client)
    store = Journal(shadow_store)
    flags = wait_for(lambda: [f for f in store.flags(kinds=["pii"]) if f.request_id == request_id])
    assert all(f.category == FLAGS_CATEGORY and f.tier in ("small", "large") for f in flags)
    assert any(f.detail.startswith("email j***@example.com (echoed") and f.score == 1.0 for f in flags), flags
    assert not any(EMAIL in f.detail for f in flags)  # masked in the store

    listed = subprocess.run(
        [sys.executable, "-m", "deployments.cli", "flags", "--since", "1h", "--kind", "pii", "--json",
         "--store", str(shadow_store)],
        capture_output=True, text=True, timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    rows = [r for r in json.loads(listed.stdout) if r["request_id"] == request_id]
    assert rows and rows[0]["kind"] == "pii" and rows[0]["category"] == FLAGS_CATEGORY

    metrics = http.get("/metrics").text
    assert f'gateway_answer_flags_total{{category="{FLAGS_CATEGORY}",kind="pii"}}' in metrics
    assert 'gateway_flag_checks_total{outcome="flagged"}' in metrics


def test_answers_of_other_categories_are_not_checked(client, shadow_store):
    raw = client.chat.completions.with_raw_response.create(
        model="small", messages=[{"role": "user", "content": f"Please note my email {EMAIL}"}], max_tokens=24,
        temperature=0,
    )
    request_id = raw.parse().id.removeprefix("chatcmpl-")  # the gateway's id (x-request-id is Ray's)
    time.sleep(3)  # a check would have been queued at once and run within this on an idle worker
    assert not [f for f in Journal(shadow_store).flags() if f.request_id == request_id]
