"""`gateway rollout status | promote | demote | events` over a state file and a journal in tmp_path."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from deployments.commands import app
from support.rollout_state import RolloutBook
from shadow.journal import FeedbackRecord, RequestRecord, Journal


@pytest.fixture
def paths(tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_SUPPORT__CONFIG", json.dumps({"rollout": {
        "categories": {"billing": "draft"}, "promotion_gate": {"min_samples": 2, "min_match": 0.5, "max_negative": 0.5}}}))
    state, store = tmp_path / "rollout" / "state.json", tmp_path / "shadow.sqlite"
    Journal(store)
    return ["--state", str(state), "--store", str(store)]


def run(*args):
    return CliRunner().invoke(app, ["rollout", *args])


def rated_draft(store_path, rid, rating, matched, category="billing"):
    store = Journal(Path(store_path))
    at = datetime.now(timezone.utc) - timedelta(minutes=5)
    store.add_request(RequestRecord(request_id=rid, created_at=at, target="small", prompt="q", draft="d",
                                    tags={"mode": "draft", "rollout_category": category}))
    store.add_feedback(FeedbackRecord(request_id=rid, rating=rating, sent_text="d", match=1.0 if matched else 0.2))


def test_status_shows_the_figures_and_why_the_gate_is_not_cleared(paths):
    rated_draft(paths[3], "r1", 1, True)
    result = run("status", *paths)
    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.output.splitlines() if line.startswith("billing")]
    assert row.split()[:5] == ["billing", "draft", "1", "1.00", "0.00"]
    assert "not cleared: 1 rated drafts < 2" in row


def test_status_json_after_feedback_clears_the_gate(paths):
    rated_draft(paths[3], "r1", 1, True)
    rated_draft(paths[3], "r2", -1, False)
    rated_draft(paths[3], "r3", 1, True)
    result = run("status", "--json", *paths)
    (billing,) = json.loads(result.output)["categories"]
    assert billing["drafts"]["n"] == 3 and billing["drafts"]["match_rate"] == pytest.approx(2 / 3)
    assert billing["promotion"]["cleared"] is True


def test_promote_refused_then_forced_then_listed(paths):
    refused = run("promote", "billing", *paths)
    assert refused.exit_code == 1 and "promotion gate is not cleared" in refused.output
    forced = run("promote", "Billing", "--force", "--note", "pilot", *paths)
    assert forced.exit_code == 0 and "billing: draft -> auto" in forced.output
    assert RolloutBook(Path(paths[1])).state().categories["billing"].mode == "auto"
    demoted = run("demote", "billing", "--to", "off", *paths)
    assert "billing: auto -> off" in demoted.output
    events = run("events", "--state", paths[1])
    lines = events.output.strip().splitlines()
    assert len(lines) == 2 and "draft -> auto  manual" in lines[0] and "(pilot)" in lines[0]
    as_json = [json.loads(line) for line in run("events", "--json", "--state", paths[1]).output.splitlines()]
    assert as_json[0]["evidence"]["forced"] is True and as_json[0]["by"].startswith("cli:")


def test_promote_to_a_mode_that_does_not_exist(paths):
    result = run("promote", "billing", "--to", "live", *paths)
    assert result.exit_code == 2 and "use one of off, draft, auto" in result.output


def test_thresholds_from_a_serve_config(paths, tmp_path):
    rated_draft(paths[3], "r1", 1, True)
    config = tmp_path / "serve.yaml"
    config.write_text(yaml.safe_dump({"applications": [{"name": "gateway", "deployments": [{
        "name": "Ingress", "user_config": {"support": {"rollout": {
            "categories": {"billing": "draft"}, "promotion_gate": {"min_samples": 1, "min_match": 0.5}}}}}]}]}))
    result = run("status", "--json", "--config", str(config), *paths)
    assert json.loads(result.output)["categories"][0]["promotion"]["cleared"] is True
