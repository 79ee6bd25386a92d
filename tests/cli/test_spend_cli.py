"""`gateway spend`: the ledger's spend since a time, per key, category or tier, as a table or JSON."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from deployments.commands import app
from spend.ledger import Amount, RowKey, SpendLedger

HOUR = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def ledger(tmp_path):
    ledger = SpendLedger(tmp_path / "spend.sqlite")
    ledger.add({
        RowKey(HOUR, "k1", "refund", "small"): Amount(3, 300, 150, 0.25, 2.5, key_name="app"),
        RowKey(HOUR - timedelta(hours=5), "k2", "", "large"): Amount(1, 100, 50, 1.0, 1.0, key_name="batch"),
        RowKey(HOUR - timedelta(days=10), "k1", "refund", "large"): Amount(9, 900, 450, 9.0, 9.0, key_name="app"),
    })
    return str(ledger.path)


def spend(*args: str):
    return CliRunner().invoke(app, ["spend", *args])


def test_json_by_key_with_top_tier_cost_and_saved(ledger):
    result = spend("--since", "7d", "--by", "key", "--json", "--ledger", ledger)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["by"] == "key"
    assert [(r["key"], r["key_name"], r["requests"]) for r in report["rows"]] == [("k2", "batch", 1), ("k1", "app", 3)]
    total = report["total"]
    assert (total["requests"], total["prompt_tokens"], total["completion_tokens"]) == (4, 400, 200)
    assert (total["spend_usd"], total["top_tier_usd"], total["saved_usd"]) == (1.25, 3.5, 2.25)


def test_the_window_reaches_back_as_asked(ledger):
    report = json.loads(spend("--since", "30d", "--by", "tier", "--json", "--ledger", ledger).output)
    assert {r["tier"]: r["spend_usd"] for r in report["rows"]} == {"large": 10.0, "small": 0.25}
    assert json.loads(spend("--since", "2h", "--json", "--ledger", ledger).output)["total"]["requests"] == 3


def test_table_by_category(ledger):
    result = spend("--by", "category", "--ledger", ledger)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("spend from") and "saved $" in lines[1]
    assert lines[2].startswith("(none)") and lines[3].startswith("refund") and lines[-1].startswith("total")
    assert lines[-1].split()[-3:] == ["1.2500", "3.5000", "2.2500"]


def test_bad_arguments_and_a_missing_ledger_fail(ledger, tmp_path):
    assert spend("--by", "user", "--ledger", ledger).exit_code == 2
    assert spend("--since", "last week", "--ledger", ledger).exit_code == 2
    missing = spend("--ledger", str(tmp_path / "none.sqlite"))
    assert missing.exit_code == 2 and "no spend ledger" in missing.output
