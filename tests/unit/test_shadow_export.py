"""The review export: CSV and markdown (spans: tests/unit/test_router_flywheel.py)."""

import csv
import io
from datetime import datetime, timezone

from shadow.export import COLUMNS, render
from shadow.journal import ShadowPair

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)


PAIR = ShadowPair(
    request_id="r1", created_at=NOW, tags={"tier": "large"}, primary_target="large", shadow_target="small",
    prompt="Where is | my refund?\nIt's late", primary_text="In 5 days.", shadow_text="Five days.",
    primary_latency_s=1.0, shadow_latency_s=0.5, agreement=0.8,
)


def test_csv_round_trips_text_with_newlines():
    rows = list(csv.DictReader(io.StringIO(render([PAIR], "csv"))))
    assert list(rows[0]) == list(COLUMNS)
    assert rows[0]["prompt"] == PAIR.prompt and rows[0]["agreement"] == "0.800"


def test_markdown_escapes_pipes_and_newlines():
    lines = render([PAIR], "md").splitlines()
    assert len(lines) == 3  # header, rule, one row
    assert "Where is \\| my refund?<br>It's late" in lines[2]


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_quoted():
    texts = ["=HYPERLINK(\"http://x\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "\rx"]
    pairs = [PAIR.model_copy(update={"prompt": text, "primary_text": text, "request_id": text}) for text in texts]
    rows = list(csv.DictReader(io.StringIO(render(pairs, "csv"), newline="")))
    for text, row in zip(texts, rows):
        assert row["prompt"] == row["primary_text"] == row["request_id"] == "'" + text
    shorter = PAIR.model_copy(update={"shadow_text": "Five."})
    assert shorter.length_delta < 0  # a negative number is data, not a formula: left as it is
    assert list(csv.DictReader(io.StringIO(render([shorter], "csv"))))[0]["length_delta"] == str(shorter.length_delta)
