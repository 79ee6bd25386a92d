"""`gateway flags`: flags of a shadow store since a time, filtered by kind, as lines or JSON."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from typer.testing import CliRunner

from deployments.commands import app
from flags.store import FlagRecord
from shadow.journal import Journal

NOW = datetime.now(timezone.utc)


def store_with_flags(tmp_path):
    store = Journal(tmp_path / "shadow.sqlite")
    store.add_flags([
        FlagRecord(request_id="old", created_at=NOW - timedelta(days=3), category="refund", tier="large",
                   kind="tone", detail="lexicon: 'idiot'", score=1.0),
        FlagRecord(request_id="r1", created_at=NOW - timedelta(hours=2), category="refund", tier="small",
                   kind="pii", detail="email j***@example.com (echoed from the customer's message)", score=1.0),
        FlagRecord(request_id="r2", created_at=NOW - timedelta(hours=1), category="", tier="large",
                   kind="promise", detail="amount: promised $500 (policy maximum 0)", score=500.0),
    ])
    return store.path


def flags(*args: str):
    return CliRunner().invoke(app, ["flags", *args])


def test_lists_the_flags_since_newest_first(tmp_path):
    result = flags("--since", "1d", "--store", str(store_with_flags(tmp_path)))
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2 and " r2 " in lines[0] and " r1 " in lines[1]
    assert "promise" in lines[0] and "amount: promised $500" in lines[0]


def test_json_filtered_by_kind(tmp_path):
    result = flags("--since", "1w", "--kind", "pii", "--kind", "tone", "--json", "--store", str(store_with_flags(tmp_path)))
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["request_id"], r["kind"], r["category"], r["tier"]) for r in rows] == [
        ("r1", "pii", "refund", "small"), ("old", "tone", "refund", "large"),
    ]


def test_bad_arguments_and_a_missing_store_fail(tmp_path):
    path = str(store_with_flags(tmp_path))
    assert flags("--kind", "rudeness", "--store", path).exit_code == 2
    assert flags("--since", "yesterday", "--store", path).exit_code == 2
    missing = flags("--store", str(tmp_path / "none.sqlite"))
    assert missing.exit_code == 2 and "no shadow store" in missing.output
