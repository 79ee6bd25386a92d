"""Knowledge-base rot on the real app: grounded requests (official `openai` client, real
vLLM, the KB's first stage in the ingress) are journaled by the ingress, and
`retrieval review --json`, run as the operator runs it (the `retrieval` command with the
app's settings), shows their query volume per document and their retrieval failures.

The usage journal is shared by the whole e2e session (other tests ground requests too),
so the checks are on what this test's own requests add.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from deployments.settings import Settings
from retrieval.knowledge import open_first_stage
from retrieval.support_kb import read_queries
from retrieval.usage import UsageStore
from text.embedding import MiniLMEmbedder

pytestmark = pytest.mark.e2e

FLUSH_TIMEOUT_S = 60  # the ingress writes its journal every second; the machine is slow
NONSENSE = ["zebra quantum tulip saxophone", "purple elephant violin marmalade", "xq zzv kkp wrr", "lorem ipsum dolor sit"]


@pytest.fixture(scope="module")
def questions() -> dict[str, list[str]]:
    """Held-out questions the KB clearly answers, and a string it clearly does not,
    judged in-process with the same KB, encoder and threshold the app uses."""
    settings = Settings().retrieval
    stage = open_first_stage(settings.kb, MiniLMEmbedder(max_tokens=256), settings.title_weight)
    threshold = settings.grounding.min_relevance
    answered = [
        q.query for q in read_queries(settings.kb_source / "heldout.jsonl")[::11]
        if stage.hybrid(q.query, settings.grounding.candidates).relevance > threshold + 0.15
    ][:3]
    unanswered = [q for q in NONSENSE if stage.hybrid(q, settings.grounding.candidates).relevance < threshold - 0.05][:1]
    if len(answered) < 3 or not unanswered:
        pytest.fail(f"no clear questions for the check (answered {len(answered)}, unanswered {len(unanswered)})")
    return {"answered": answered, "unanswered": unanswered}


def review(settings_env: dict[str, str], contradictions: bool = False) -> dict:
    """`retrieval review --json` with the app's settings (its cache dir: its KB and journal)."""
    command = [str(Path(sys.executable).parent / "retrieval"), "review", "--json"]
    if not contradictions:
        command.append("--no-contradictions")
    done = subprocess.run(
        command, env={**os.environ, "HF_HUB_OFFLINE": "1", **settings_env}, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def volumes(queue: dict) -> dict[str, int]:
    return {d["doc_id"]: d["queries"] for d in queue["most_retrieved"]}


def failures(queue: dict) -> int:
    return sum(c["failures"] for c in queue["categories"])


# A category of its own (other tests change the rollout mode of theirs); the gate is
# skipped: this test is about what retrieval does with whatever it is asked.
BODY = {"grounding": True, "gate": False, "metadata": {"category": "kb-rot-e2e"}}


def ask(client, question: str):
    return client.chat.completions.with_raw_response.create(
        model="small", messages=[{"role": "user", "content": question}], max_tokens=16, temperature=0,
        extra_body=BODY,
    )


def chunks_of(headers) -> set[str]:
    return {chunk.split("#")[0] for chunk in headers["x-gateway-context-chunks"].split(",")}


def test_grounded_requests_show_in_the_review_queue(client, questions, settings_env, e2e_cache):
    before = review(settings_env)
    served: Counter[str] = Counter()
    for question in questions["answered"]:
        raw = ask(client, question)
        assert raw.http_response.status_code == 200 and raw.headers["x-gateway-context"] != "none"
        served.update(chunks_of(raw.headers))
        assert raw.parse().choices[0].message.content is not None
    with client.chat.completions.with_streaming_response.create(
        model="small", messages=[{"role": "user", "content": questions["answered"][0]}], max_tokens=16,
        temperature=0, stream=True, extra_body=BODY,
    ) as streamed:
        assert streamed.headers["x-gateway-context"] != "none"
        served.update(chunks_of(streamed.headers))
        assert [c for c in streamed.parse()]  # read to its end: the answer is then final
    failed = ask(client, questions["unanswered"][0])
    assert failed.headers["x-gateway-context"] == "none"

    sent = len(questions["answered"]) + 2
    journal = UsageStore(e2e_cache / "kb" / "usage.sqlite")  # where the app's settings put it
    since = datetime.now(timezone.utc) - timedelta(days=1)
    deadline = time.monotonic() + FLUSH_TIMEOUT_S
    while journal.queries(since) < before["grounded_queries"] + sent and time.monotonic() < deadline:
        time.sleep(1)

    after = review(settings_env, contradictions=True)
    assert after["grounded_queries"] - before["grounded_queries"] == sent
    assert failures(after) - failures(before) == 1
    grown = {doc: volumes(after).get(doc, 0) - volumes(before).get(doc, 0) for doc in served}
    assert grown == dict(served)  # each document once per request whose prompt held it
    # The default KB's articles carry one fixed edit date (2024-06-01): every busy one is stale.
    stale = {d["doc_id"] for d in after["stale"]}
    assert set(served) <= stale
    assert isinstance(after["contradictions"], list)  # checked on the real KB with MiniLM
