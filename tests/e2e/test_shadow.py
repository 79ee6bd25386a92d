"""Shadow traffic on the real app: mirrored requests answered unchanged, pairs stored and
exported for review, feedback stored, and a deliberately bad adapter (trained on shuffled
answers) rolled back automatically by its canary."""

from __future__ import annotations

from functools import partial

import csv
import io
import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from adapters.manifest import MANIFEST, AdapterManifest
from shadow.journal import Journal
from tests.e2e.conftest import CANARY_CATEGORY, SHADOW_CATEGORY
from tests.support.adapters import drill_adapter

from tests.support.waiting import wait_for as wait_until

pytestmark = pytest.mark.e2e

REFUND_QUESTIONS = [
    "How can I get a refund for my order?",
    "I want my money back for the shoes I returned",
    "What is your refund policy?",
    "How long does it take to receive a refund?",
    "Can I get a refund if I paid with a gift card?",
    "Where can I check the status of my refund?",
    "I was charged twice, how do I get a refund for the second charge?",
]


def ask(client, text: str, model: str = "small", category: str | None = None, max_tokens: int = 32):
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], max_tokens=max_tokens, temperature=0,
        metadata={"category": category} if category else None,
    )


wait_for = partial(wait_until, timeout=240.0, every=1.0)


def test_mirrored_requests_are_answered_as_without_shadowing(client, shadow_store):
    question = "My package never arrived, what can I do?"
    plain = ask(client, question)
    mirrored = [ask(client, question, category=SHADOW_CATEGORY) for _ in range(2)]
    for raw in mirrored:
        assert raw.http_response.status_code == 200
        assert raw.headers["x-gateway-tier"] == "small"
        # Greedy decoding: the same answer as the request nobody mirrored.
        assert raw.parse().choices[0].message.content == plain.parse().choices[0].message.content
    ids = {raw.parse().id.removeprefix("chatcmpl-") for raw in mirrored}  # the gateway's ids, not x-request-id
    store = Journal(shadow_store)
    pairs = wait_for(lambda: [p for p in store.pairs() if p.request_id in ids] if len(
        [p for p in store.pairs() if p.request_id in ids]) == 2 else None)
    for pair in pairs:
        assert (pair.primary_target, pair.shadow_target) == ("small", "large")
        assert pair.tags["category"] == SHADOW_CATEGORY and pair.shadow_text and 0.0 <= pair.agreement <= 1.0
        assert pair.primary_text == plain.parse().choices[0].message.content
    assert not [p for p in store.pairs() if p.request_id == plain.parse().id.removeprefix("chatcmpl-")]


def test_pairs_are_exported_for_review(client, shadow_store, tmp_path):
    wait_for(lambda: Journal(shadow_store).pairs(), timeout=60)
    out = tmp_path / "review.csv"
    done = subprocess.run(
        [sys.executable, "-m", "deployments.cli", "shadow", "sample", "--n", "20", "--since", "1d",
         "--format", "csv", "--store", str(shadow_store), "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert rows and all(r["primary_target"] and r["shadow_target"] == "large" and r["agreement"] for r in rows)


def test_feedback_is_stored_with_the_answer(client, http, shadow_store):
    raw = ask(client, "Can I change my delivery address?")
    request_id, draft = raw.parse().id.removeprefix("chatcmpl-"), raw.parse().choices[0].message.content
    store = Journal(shadow_store)
    wait_for(lambda: store.request(request_id), timeout=30, every=0.2)
    r = http.post("/v1/feedback", json={"request_id": raw.parse().id, "rating": -1, "sent_text": draft + " Thanks!",
                                        "comment": "agent added a closing"})
    assert r.status_code == 200, r.text
    assert r.json()["answered_by"] == "small" and r.json()["match"] > 0.8
    assert [(f.rating, f.comment) for f in store.feedback(request_id)] == [(-1, "agent added a closing")]
    unknown = http.post("/v1/feedback", json={"request_id": "no-such-request", "rating": 1})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "request_not_found"


def _register_bad_adapter(admin, tmp_path: Path) -> str:
    """The shuffled-answers drill adapter, re-issued under a fresh refund version."""
    version = f"refund-v90-{date.today():%Y-%m-%d}"
    target = tmp_path / version
    shutil.copytree(drill_adapter("refund"), target)
    manifest = AdapterManifest.model_validate_json((target / MANIFEST).read_bytes())
    (target / MANIFEST).write_text(manifest.model_copy(update={"version": version}).model_dump_json())
    r = admin.post("/admin/adapters", json={"path": str(target), "force": True})
    assert r.status_code == 200, r.text
    return version


def _active(registry_dir: Path, domain: str) -> str | None:
    return json.loads((registry_dir / "state.json").read_text())["domains"][domain]["active"]


def test_bad_adapter_is_rolled_back_automatically(client, admin, registry_dir, shadow_store, tmp_path):
    good = _active(registry_dir, "refund")
    assert good is not None
    bad = _register_bad_adapter(admin, tmp_path)
    store = Journal(shadow_store)

    def scored(version: str) -> int:
        return store.agreement(f"small:refund@{version}", "large").n

    # The good version's guardrail: its answers vs the large tier's on refund questions.
    for question in REFUND_QUESTIONS[:6]:
        assert ask(client, question, "small:refund", CANARY_CATEGORY).headers["x-gateway-adapter"] == good
    wait_for(lambda: scored(good) >= 6)
    r = admin.post("/admin/adapters/refund/activate", json={"version": bad})
    assert r.status_code == 200, r.text
    served_bad = 0
    for question in REFUND_QUESTIONS * 2:
        raw = ask(client, question, "small:refund", CANARY_CATEGORY)
        assert raw.http_response.status_code == 200  # the primary is never failed by the canary
        served_bad += raw.headers["x-gateway-adapter"] == bad
        if _active(registry_dir, "refund") == good:
            break
    events = wait_for(lambda: [e for e in store.events() if e.kind == "rolled_back" and e.subject == bad], timeout=300)
    before, after = store.agreement(f"small:refund@{good}", "large"), store.agreement(f"small:refund@{bad}", "large")
    print(f"agreement with large: good {before.mean:.3f} (n={before.n}), shuffled {after.mean:.3f} (n={after.n})")
    assert served_bad >= 6 and after.mean < before.mean * 0.95
    assert events[0].detail["against"] == good
    assert wait_for(lambda: _active(registry_dir, "refund") == good, timeout=30)
    # Served again by the good version, and the models list says so.
    assert wait_for(lambda: ask(client, REFUND_QUESTIONS[0], "small:refund").headers["x-gateway-adapter"] == good, timeout=60)
