"""`router collect` without a server: queries in, the checkpoint, retry waits, the answers file."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import httpx2
import openai
import pytest

from router.collect import (
    AnswerRecord, AskSettings, ChatMessage, CheckpointError, CheckpointWriter, Collection,
    is_transient, load_checkpoint, load_queries, parse_checkpoint, query_id, retry_after_s, wait_s,
    write_answers,
)
from router.data import DataError

REQUEST = httpx2.Request("POST", "http://gateway/v1/chat/completions")


def status_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    response = httpx2.Response(status, headers=headers or {}, request=REQUEST)
    kind = {429: openai.RateLimitError, 404: openai.NotFoundError, 400: openai.BadRequestError}
    return kind.get(status, openai.InternalServerError)("failed", response=response, body=None)


def record(query: str, target: str, answer: str = "a", error: str | None = None) -> AnswerRecord:
    return AnswerRecord(query_id=query, target=target, answer=None if error else answer,
                        latency_s=0.1, completion_tokens=3, error=error)


# -- queries --------------------------------------------------------------------------------

def test_csv_rows_become_queries_with_optional_fields(tmp_path: Path):
    data = tmp_path / "q.csv"
    data.write_text('prompt,reference,category\n"hi, there",hello,chat\nwhat is 2+2,,\n')
    first, second = load_queries(data)
    assert (first.prompt, first.reference, first.category) == ("hi, there", "hello", "chat")
    assert (second.prompt, second.reference, second.category) == ("what is 2+2", None, None)
    assert not first.from_messages


def test_messages_in_csv_are_json_and_the_prompt_is_the_last_user_turn(tmp_path: Path):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "one"},
                {"role": "assistant", "content": "1"}, {"role": "user", "content": "two"}]
    data = tmp_path / "q.csv"
    with data.open("w", newline="") as handle:
        csv.writer(handle).writerows([["messages", "category"], [json.dumps(messages), "math"]])
    (query,) = load_queries(data)
    assert query.prompt == "two" and query.from_messages and len(query.messages) == 4


def test_jsonl_ids_are_stable_and_one_prompt_is_one_query(tmp_path: Path):
    data = tmp_path / "q.jsonl"
    rows = [{"prompt": "same", "reference": 4}, {"messages": [{"role": "user", "content": "same"}]},
            {"prompt": "other", "category": "x"}]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    queries = load_queries(data)
    assert [q.prompt for q in queries] == ["same", "other"]
    assert queries[0].reference == "4"  # the first row wins, its number kept as text
    assert queries[0].id == query_id([ChatMessage(role="user", content="same")])
    assert queries[0].id != queries[1].id and len(queries[0].id) == 16
    assert [q.id for q in load_queries(data)] == [q.id for q in queries]


def test_limit_counts_distinct_queries(tmp_path: Path):
    data = tmp_path / "q.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": p}) for p in ["a", "a", "b", "c"]))
    assert [q.prompt for q in load_queries(data, limit=2)] == ["a", "b"]


@pytest.mark.parametrize("line, message", [
    ('{"reference": "x"}', "needs a non-empty `prompt` or `messages`"),
    ('{"messages": [{"role": "system", "content": "s"}]}', "no user message"),
    ('{"messages": "not json"}', "must be a list"),
    ('[1, 2]', "expected a JSON object"),
    ('{"prompt": ', "not JSON"),
])
def test_bad_rows_name_their_line(tmp_path: Path, line: str, message: str):
    data = tmp_path / "q.jsonl"
    data.write_text('{"prompt": "fine"}\n' + line + "\n")
    with pytest.raises(DataError, match=message) as raised:
        load_queries(data)
    assert f"{data}:2" in str(raised.value)


def test_other_formats_are_refused(tmp_path: Path):
    data = tmp_path / "q.parquet"
    data.write_bytes(b"")
    with pytest.raises(DataError, match="expected a .csv or .jsonl"):
        load_queries(data)


# -- the checkpoint -------------------------------------------------------------------------

def lines(*records: AnswerRecord) -> bytes:
    return b"".join(r.model_dump_json().encode() + b"\n" for r in records)


def test_a_checkpoint_parses_back_to_its_records():
    data = lines(record("q1", "small"), record("q1", "large", error="404: no such model"))
    records, valid = parse_checkpoint(data)
    assert [(r.query_id, r.target, r.error) for r in records] == [
        ("q1", "small", None), ("q1", "large", "404: no such model")]
    assert valid == len(data)


WHOLE_BUT_UNENDED = record("q2", "small").model_dump_json().encode()


@pytest.mark.parametrize("tail", [b'{"query_id": "q2", "tar', WHOLE_BUT_UNENDED])
def test_a_torn_last_line_is_left_out(tail: bytes):
    # Cut mid-write, or whole but without its newline: either way the pair never counted.
    good = lines(record("q1", "small"))
    records, valid = parse_checkpoint(good + tail)
    assert [r.query_id for r in records] == ["q1"] and valid == len(good)


def test_a_garbled_last_line_is_left_out_but_a_garbled_middle_line_is_an_error():
    good = lines(record("q1", "small"))
    assert parse_checkpoint(good + b"\x00\x00garbage\n") == (parse_checkpoint(good)[0], len(good))
    with pytest.raises(CheckpointError, match="line 2"):
        parse_checkpoint(good + b"garbage\n" + lines(record("q2", "small")))


def test_empty_and_blank_checkpoints():
    assert parse_checkpoint(b"") == ([], 0)
    assert parse_checkpoint(b"\n\n") == ([], 2)


def test_the_writer_cuts_a_torn_tail_before_appending(tmp_path: Path):
    path = tmp_path / "run.partial.jsonl"
    path.write_bytes(lines(record("q1", "small")) + b'{"query_id": "q2"')
    done, valid = load_checkpoint(path)
    with CheckpointWriter(path, valid) as writer:
        writer.append(record("q2", "small"))
    done, _ = load_checkpoint(path)
    assert sorted(done) == [("q1", "small"), ("q2", "small")]


def test_a_missing_checkpoint_is_an_empty_one(tmp_path: Path):
    assert load_checkpoint(tmp_path / "none.jsonl") == ({}, 0)


# -- retries --------------------------------------------------------------------------------

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("headers, expected", [
    ({"retry-after": "0.2"}, 0.2),
    ({"retry-after": "3"}, 3.0),
    ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
    ({"retry-after": format_datetime(NOW + timedelta(seconds=5), usegmt=True)}, 5.0),
    ({"retry-after": format_datetime(NOW - timedelta(seconds=5), usegmt=True)}, 0.0),
    ({"retry-after": "-1"}, 0.0),
    ({"retry-after": "soon"}, None),
    ({}, None),
])
def test_retry_after_reads_seconds_milliseconds_and_dates(headers, expected):
    assert retry_after_s(headers, now=NOW) == expected


SETTINGS = AskSettings(backoff_s=0.5, max_wait_s=10.0)


def test_a_429_waits_as_long_as_the_server_says():
    assert wait_s(status_error(429, {"Retry-After": "0.2"}), 1, SETTINGS) == 0.2
    assert wait_s(status_error(503, {"Retry-After": "2"}), 4, SETTINGS) == 2.0


def test_without_retry_after_the_wait_backs_off_up_to_the_cap():
    timeout = openai.APITimeoutError(request=REQUEST)
    assert [wait_s(timeout, n, SETTINGS) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert wait_s(status_error(429), 10, SETTINGS) == 10.0
    assert wait_s(status_error(429, {"Retry-After": "3600"}), 1, SETTINGS) == 10.0


@pytest.mark.parametrize("exc, transient", [
    (status_error(429), True), (status_error(500), True), (status_error(503), True),
    (openai.APIConnectionError(request=REQUEST), True),
    (openai.APITimeoutError(request=REQUEST), True),
    (status_error(400), False), (status_error(404), False), (ValueError("bug"), False),
])
def test_only_rate_limits_server_errors_and_lost_connections_are_retried(exc, transient):
    assert is_transient(exc) is transient


# -- the answers file -----------------------------------------------------------------------

def finished(tmp_path: Path, rows: list[dict]) -> Collection:
    data = tmp_path / "q.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    queries = load_queries(data)
    checkpoint = tmp_path / "ck.jsonl"
    records = [record(q.id, "small", f"s{q.prompt}") for q in queries]
    records += [record(queries[0].id, "large", error="400: too long"),
                *(record(q.id, "large", f"l{q.prompt}") for q in queries[1:])]
    checkpoint.write_bytes(lines(*records))
    return Collection(queries, ["small", "large", "small"], checkpoint)


def test_a_finished_collection_has_nothing_pending_and_counts_its_errors(tmp_path: Path):
    job = finished(tmp_path, [{"prompt": "a"}, {"prompt": "b"}])
    assert job.targets == ["small", "large"] and job.total == 4 and job.resumed == 4
    assert job.pending() == []
    assert {t: len(r) for t, r in job.errors().items()} == {"large": 1}


def test_answers_csv_has_a_column_set_per_target_and_errors_where_any(tmp_path: Path):
    job = finished(tmp_path, [{"prompt": "a", "reference": "A", "category": "c"}, {"prompt": "b"}])
    out = tmp_path / "answers.csv"
    write_answers(out, job.rows())
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "id", "prompt", "category", "reference", "answer:small", "latency_s:small", "tokens:small",
        "answer:large", "latency_s:large", "tokens:large", "error:large",
    ]
    assert rows[0]["answer:small"] == "sa" and rows[0]["error:large"] == "400: too long"
    assert rows[1]["answer:large"] == "lb" and rows[1]["error:large"] == ""
    assert rows[1]["reference"] == "" and rows[1]["category"] == ""
    assert not list(tmp_path.glob(".answers.csv.*"))  # the temp file was renamed, not left


def test_answers_jsonl_keeps_the_messages_of_message_input(tmp_path: Path):
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "a"}]
    job = finished(tmp_path, [{"messages": messages}, {"prompt": "b"}])
    out = tmp_path / "answers.jsonl"
    write_answers(out, job.rows())
    first, second = (json.loads(line) for line in out.read_text().splitlines())
    assert first["prompt"] == "a" and first["messages"][0] == {"role": "system", "content": "s"}
    assert second["messages"] == [{"role": "user", "content": "b"}] and second["tokens:small"] == 3


def test_an_answers_file_of_another_kind_is_refused(tmp_path: Path):
    with pytest.raises(DataError, match=".csv or .jsonl"):
        write_answers(tmp_path / "answers.txt", [])
