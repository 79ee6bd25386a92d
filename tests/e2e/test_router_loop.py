"""The router's own-pair loop on the real app, in one test: collect both tiers' answers,
grade them, train a router on them, register it as the candidate, let the router canary
judge it on live `auto` traffic, see it promoted and served; then a router trained on
shuffled outcomes is rejected by the same canary and never serves.

Real Ray Serve, real vLLM tiers, the real `router` command line (as a user runs it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from tests.e2e.conftest import ROUTER_CANARY_INTERVAL_S

pytestmark = pytest.mark.e2e

QUERIES = Path(__file__).parents[2] / "data" / "routing_eval" / "queries.jsonl"
HISTORY = QUERIES.with_name("outcomes_embedded.csv")
PER_CATEGORY = {"facts": 8, "arithmetic": 8, "instructions": 8, "order": 4, "refund": 4, "account": 4, "payment": 4}


def router_cli(env: dict[str, str], *args: str, timeout: float = 900) -> str:
    result = subprocess.run(
        [sys.executable, "-c", "from deployments.commands import router; router()", *args],
        env={**os.environ, "HF_HUB_OFFLINE": "1", **env}, capture_output=True, text=True, timeout=timeout,
    )
    assert result.returncode == 0, f"router {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def sample_queries(path: Path) -> Path:
    rows = [json.loads(line) for line in QUERIES.read_text().splitlines() if line.strip()]
    chosen = []
    for category, n in PER_CATEGORY.items():
        chosen += [r for r in rows if r["category"] == category][:n]
    path.write_text("".join(json.dumps(r) + "\n" for r in chosen))
    return path


def auto(http: httpx.Client, prompt: str) -> httpx.Response:
    body = {"model": "auto", "messages": [{"role": "user", "content": prompt}], "max_tokens": 2,
            "temperature": 0, "grounding": False}
    response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return response


def replay_until(http: httpx.Client, prompts: list[str], done, timeout_s: float = 600) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for prompt in prompts:
            auto(http, prompt)
        if done():
            return True
        time.sleep(ROUTER_CANARY_INTERVAL_S)
    return False


def router_state(admin: httpx.Client) -> dict:
    return admin.get("/admin/router").json()


@pytest.fixture
def restores_default_router(admin):
    """Later tests expect the shipped default router: back to it whatever happened here."""
    yield
    admin.post("/admin/router/candidate", json={})
    for _ in range(5):  # only this test activates versions: one rollback suffices
        if admin.get("/admin/router").json()["active"] is None:
            break
        assert admin.post("/admin/router/rollback").status_code == 200
    assert admin.get("/admin/router").json()["serving"] == "router-mmlu-default"


def test_collect_grade_train_canary_promote_serve_and_reject(
    gateway_url, settings_env, e2e_cache, canary_outcomes, http, admin, restores_default_router,
):
    work = e2e_cache / "router-loop"
    work.mkdir(exist_ok=True)
    queries = sample_queries(work / "queries.jsonl")

    # 1. Collect: each tier answers every query through the gateway (the small tier with the
    # adapter its selector picks, as auto traffic routed small gets it).
    router_cli(settings_env, "collect", "--data", str(queries), "--target", "small:auto", "--target", "large",
               "--base-url", f"{gateway_url}/v1", "--out", str(work / "answers.csv"),
               "--max-tokens", "24", "--concurrency", "8", "--extra-body", '{"grounding": false}')
    answers = pd.read_csv(work / "answers.csv", keep_default_na=False)  # an empty answer is an answer
    assert len(answers) == sum(PER_CATEGORY.values())
    assert {"answer:large", "answer:small:auto"} <= set(answers.columns)
    assert not [c for c in answers.columns if c.startswith("error:")]  # every pair answered

    # 2. Grade against the references; 3. train on the graded outcomes.
    outcomes = canary_outcomes
    router_cli(settings_env, "grade", "--answers", str(work / "answers.csv"), "--match", "auto",
               "--out", str(outcomes), "--report", str(work / "report.json"))
    graded = pd.read_csv(outcomes)
    assert graded["score:large"].notna().sum() >= 30
    # Train on what was just collected plus the pair's earlier outcomes (the embedded tiers'
    # answers to the whole labelled set, collected the same way: data/routing_eval).
    history = pd.read_csv(HISTORY)
    pd.concat([history, graded], ignore_index=True).to_csv(work / "train.csv", index=False)
    cols = ["--small-col", "score:small:auto", "--large-col", "score:large"]
    router_cli(settings_env, "train", "--data", str(work / "train.csv"), *cols, "--out", str(work / "good"),
               "--version", "own-pair", "--threads", "1")

    # 4. Register it as the candidate; the canary scores it beside the active default.
    out = router_cli(settings_env, "register", str(work / "good"), "--candidate")
    good = out.split()[1]
    assert router_state(admin)["candidate"] == good
    prompts = graded["prompt"].tolist()
    assert replay_until(http, prompts, lambda: router_state(admin)["active"] == good), router_state(admin)

    # 5. Promoted: every auto answer now says so (this replica polls once a second).
    assert replay_until(http, prompts[:1], lambda: auto(http, prompts[0]).headers["x-gateway-router-version"] == good, 30)
    events = admin.get("/admin/router").json()["history"]
    assert any(e["event"] == "activated" and e["version"] == good and e["reason"] for e in events)

    # 6. A router trained on shuffled outcomes: the canary rejects it on the same traffic.
    shuffled = pd.read_csv(work / "train.csv")
    shuffled["score:small:auto"] = shuffled["score:small:auto"].sample(frac=1.0, random_state=3).to_numpy()
    shuffled["score:large"] = shuffled["score:large"].sample(frac=1.0, random_state=4).to_numpy()
    shuffled.to_csv(work / "shuffled.csv", index=False)
    router_cli(settings_env, "train", "--data", str(work / "shuffled.csv"), *cols, "--out", str(work / "bad"),
               "--version", "shuffled", "--threads", "1")
    bad = router_cli(settings_env, "register", str(work / "bad"), "--candidate").split()[1]
    assert replay_until(http, prompts, lambda: router_state(admin)["candidate"] is None), router_state(admin)
    state = router_state(admin)
    assert state["active"] == good and state["serving"] == good  # the shuffled one never served
    rejected = [e for e in state["history"] if e["event"] == "candidate_cleared"]
    assert rejected and "quality" in rejected[-1]["reason"], state["history"]
    metrics = http.get("/metrics").text
    assert 'gateway_router_canary_decisions_total{decision="promote"}' in metrics
    assert 'gateway_router_canary_decisions_total{decision="reject"}' in metrics
    assert bad not in (state["active"], state["serving"])
