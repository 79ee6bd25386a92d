"""Asking every gateway target for its answer to historical queries (`router collect`).

The answers are what a router is trained on for *our* model pair: grade them offline,
then `router train` on the grades.

Resumable by construction: each finished (query, target) pair is appended to a JSONL
checkpoint and fsync'd before it counts, and a run starts by skipping the pairs the
checkpoint already holds. A kill loses at most the requests in flight (never a written
answer), and no pair is written twice. The answers file is written, atomically, from the
checkpoint once every pair has a record.

What a request can end in (the gateway speaks OpenAI; the official client raises):

    answered (200)                          an answer record
    openai.APIError
    ├── APIConnectionError, APITimeoutError  retried with exponential backoff
    └── APIStatusError
        ├── RateLimitError (429)             retried after its Retry-After (else backoff)
        ├── InternalServerError (5xx)        retried after its Retry-After (else backoff)
        └── any other 4xx                    permanent: an error record, never asked again
    retries exhausted                       GatewayUnavailable: the run stops, progress kept
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import openai
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from engines.confidence import COLUMN_PREFIXES, AnswerConfidence, answer_confidence
from engines.types import TokenLogprob, TopLogprob
from router.data import DataError

Pair = tuple[str, str]  # (query id, target)
OUTPUT_SUFFIXES = (".csv", ".jsonl")


class ChatMessage(BaseModel):
    # History exports carry extra keys (name, tool ids...); they are not part of the prompt.
    model_config = ConfigDict(extra="ignore", frozen=True)
    role: str
    content: str


class Query(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str = Field(description="sha256 prefix of the messages: the same prompt is one query")
    messages: tuple[ChatMessage, ...]
    reference: str | None = None
    category: str | None = None
    from_messages: bool = Field(False, description="Input gave `messages`: the output keeps them")

    @property
    def prompt(self) -> str:
        return next(m.content for m in reversed(self.messages) if m.role == "user")


class AnswerRecord(BaseModel):
    """One finished (query, target) pair: a checkpoint line."""

    query_id: str
    target: str
    answer: str | None = None
    latency_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    error: str | None = Field(None, description="A permanent failure (a 4xx other than 429)")
    confidence: AnswerConfidence | None = Field(None, description="From the answer's token logprobs (--logprobs)")


class AskSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_tokens: int = Field(128, ge=1)
    concurrency: int = Field(4, ge=1, description="Requests in flight at most")
    attempts: int = Field(6, ge=1, description="Tries of one pair, the first included")
    backoff_s: float = Field(0.5, ge=0, description="First wait without a Retry-After; doubles")
    max_wait_s: float = Field(60.0, ge=0, description="Cap on any wait, a Retry-After included")
    extra_body: dict[str, Any] = Field(
        default_factory=dict, description="Fields added to every request (e.g. the gateway's grounding flag)"
    )
    top_logprobs: int | None = Field(
        None, ge=0, le=20, description="Ask token logprobs with this many alternatives; None: none asked"
    )


class GatewayUnavailable(RuntimeError):
    """A pair still failed transiently after every attempt: asking the rest is pointless now."""


class CheckpointError(ValueError):
    """A checkpoint line other than the last does not parse: not a torn write, not ours to skip."""


# -- the queries --------------------------------------------------------------------------

def query_id(messages: Iterable[ChatMessage]) -> str:
    canonical = json.dumps([m.model_dump() for m in messages], sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def load_queries(path: Path, limit: int | None = None) -> list[Query]:
    """Queries in file order; a repeated prompt is kept once (its first row)."""
    queries: dict[str, Query] = {}
    for where, row in _read_rows(path):
        if limit is not None and len(queries) >= limit:
            break
        query = _query(row, where)
        queries.setdefault(query.id, query)
    if not queries:
        raise DataError(f"{path} holds no queries")
    return list(queries.values())


def _read_rows(path: Path) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.DictReader(handle), start=2):  # line 1: header
                yield f"{path}:{number}", row
    elif path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield f"{path}:{number}", _json_object(line, f"{path}:{number}")
    else:
        raise DataError(f"{path}: expected a .csv or .jsonl file")


def _json_object(line: str, where: str) -> Mapping[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise DataError(f"{where}: expected a JSON object")
    return value


_MESSAGES = TypeAdapter(tuple[ChatMessage, ...])


def _query(row: Mapping[str, Any], where: str) -> Query:
    raw, prompt = row.get("messages"), row.get("prompt")
    if raw not in (None, ""):
        messages = _messages(raw, where)
    elif isinstance(prompt, str) and prompt.strip():
        messages = (ChatMessage(role="user", content=prompt),)
    else:
        raise DataError(f"{where}: needs a non-empty `prompt` or `messages`")
    if not any(m.role == "user" for m in messages):
        raise DataError(f"{where}: `messages` holds no user message")
    return Query(id=query_id(messages), messages=messages, reference=_text(row.get("reference")),
                 category=_text(row.get("category")), from_messages=raw not in (None, ""))


def _messages(raw: Any, where: str) -> tuple[ChatMessage, ...]:
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw  # a CSV cell holds JSON text
        return _MESSAGES.validate_python(value)
    except (json.JSONDecodeError, ValidationError) as exc:
        message = f"{where}: `messages` must be a list of {{role, content}} ({exc})"
        raise DataError(message) from None


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


# -- the checkpoint -----------------------------------------------------------------------

def parse_checkpoint(data: bytes) -> tuple[list[AnswerRecord], int]:
    """The records, and the byte length they span (a torn last line is left out of both)."""
    lines = data.split(b"\n")[:-1]  # bytes after the last newline: a write cut short
    records: list[AnswerRecord] = []
    valid = 0
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                records.append(AnswerRecord.model_validate_json(line))
            except ValidationError:
                if number < len(lines):
                    raise CheckpointError(f"checkpoint line {number} does not parse") from None
                break  # torn: the pair was never counted, so it is asked again
        valid += len(line) + 1
    return records, valid


def load_checkpoint(path: Path) -> tuple[dict[Pair, AnswerRecord], int]:
    if not path.exists():
        return {}, 0
    records, valid = parse_checkpoint(path.read_bytes())
    done: dict[Pair, AnswerRecord] = {}
    for record in records:
        done.setdefault((record.query_id, record.target), record)
    return done, valid


class CheckpointWriter:
    """Appends records; each is on disk (fsync) before `append` returns."""

    def __init__(self, path: Path, valid_bytes: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size > valid_bytes:
            # Drop a torn tail, or the next record would be glued to it and corrupt the file.
            os.truncate(path, valid_bytes)
        self._file = path.open("ab")

    def append(self, record: AnswerRecord) -> None:
        # Synchronous on purpose: one small write per answer, and no two appends interleave.
        self._file.write((record.model_dump_json() + "\n").encode())
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> CheckpointWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


# -- asking -------------------------------------------------------------------------------

def retry_after_s(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds a server asked us to wait (`retry-after-ms`, `retry-after` seconds or date).

    `headers` is looked up in lower case (httpx headers are case-insensitive)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            pass
        if scale == 1.0:
            return _seconds_until(value, now or datetime.now(timezone.utc))
    return None


def _seconds_until(http_date: str, now: datetime) -> float | None:
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now).total_seconds())


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIConnectionError):  # timeouts included
        return True
    if not isinstance(exc, openai.APIStatusError):
        return False
    return exc.status_code == 429 or exc.status_code >= 500


def wait_s(exc: BaseException | None, attempt: int, settings: AskSettings) -> float:
    """Before try `attempt + 1`: the server's Retry-After when it gave one, else backoff."""
    told = retry_after_s(exc.response.headers) if isinstance(exc, openai.APIStatusError) else None
    wait = told if told is not None else settings.backoff_s * 2 ** (attempt - 1)
    return min(wait, settings.max_wait_s)


def _wait(settings: AskSettings) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return wait_s(exc, state.attempt_number, settings)

    return wait


async def ask(
    client: openai.AsyncOpenAI, query: Query, target: str, settings: AskSettings
) -> AnswerRecord:
    """One pair's record, retried here (the client's own retries are off, see the CLI)."""
    retrying = AsyncRetrying(
        stop=stop_after_attempt(settings.attempts), wait=_wait(settings),
        retry=retry_if_exception(is_transient), reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                return await _complete(client, query, target, settings)
    except openai.APIError as exc:
        if is_transient(exc):
            raise GatewayUnavailable(
                f"{target} still failing after {settings.attempts} tries: {_describe(exc)}"
            ) from exc
        return AnswerRecord(query_id=query.id, target=target, error=_describe(exc))
    raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover


async def _complete(
    client: openai.AsyncOpenAI, query: Query, target: str, settings: AskSettings
) -> AnswerRecord:
    started = time.perf_counter()
    logprobs: dict[str, Any] = {}
    if settings.top_logprobs is not None:
        logprobs = {"logprobs": True, "top_logprobs": settings.top_logprobs}
    response = await client.chat.completions.create(
        model=target, messages=[m.model_dump() for m in query.messages],  # type: ignore[misc]
        temperature=0, max_tokens=settings.max_tokens, extra_body=settings.extra_body or None, **logprobs,
    )
    latency = round(time.perf_counter() - started, 4)
    if not response.choices:
        return AnswerRecord(query_id=query.id, target=target, latency_s=latency, error="no choices")
    choice, usage = response.choices[0], response.usage
    return AnswerRecord(
        query_id=query.id, target=target, answer=choice.message.content or "", latency_s=latency,
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        finish_reason=choice.finish_reason, confidence=_confidence(choice),
    )


def _confidence(choice: Any) -> AnswerConfidence | None:
    """The answer's confidence from the client's logprobs (None when none came back)."""
    content = choice.logprobs.content if choice.logprobs is not None else None
    tokens = [
        TokenLogprob(token=t.token, logprob=t.logprob,
                     top=[TopLogprob(token=a.token, logprob=a.logprob) for a in t.top_logprobs or ()])
        for t in content or ()
    ]
    return answer_confidence(tokens)


def _describe(exc: openai.APIError) -> str:
    # The client prefixes "Error code: N - "; the body's own message reads better beside N.
    body = exc.body if isinstance(exc.body, dict) else {}
    message = body.get("message") or exc.message
    status = getattr(exc, "status_code", None)
    return f"{status}: {message}" if status else f"{type(exc).__name__}: {message}"


# -- a run --------------------------------------------------------------------------------

class Collection:
    """Every (query, target) pair, what the checkpoint already holds, and what is left."""

    def __init__(self, queries: list[Query], targets: list[str], checkpoint: Path,
                 with_confidence: bool = False) -> None:
        self.queries, self.checkpoint, self.with_confidence = queries, checkpoint, with_confidence
        self.targets = list(dict.fromkeys(targets))  # a target named twice is asked once
        self.records, self._valid_bytes = load_checkpoint(checkpoint)
        self.resumed = sum(1 for pair in self._pairs() if pair in self.records)

    @property
    def total(self) -> int:
        return len(self.queries) * len(self.targets)

    def pending(self) -> list[tuple[Query, str]]:
        # Targets interleaved per query: a half-done run has whole rows, not whole columns.
        return [(q, t) for q in self.queries for t in self.targets if (q.id, t) not in self.records]

    def errors(self) -> dict[str, list[AnswerRecord]]:
        wanted = (self.records[pair] for pair in self._pairs() if pair in self.records)
        failed: dict[str, list[AnswerRecord]] = {}
        for record in wanted:
            if record.error is not None:
                failed.setdefault(record.target, []).append(record)
        return failed

    async def run(self, client: openai.AsyncOpenAI, settings: AskSettings,
                  on_record: Callable[[AnswerRecord], None] = lambda _: None) -> None:
        todo = self.pending()
        shared = iter(todo)  # one iterator for all workers: each pair is taken exactly once
        with CheckpointWriter(self.checkpoint, self._valid_bytes) as writer:
            async def worker() -> None:
                for query, target in shared:
                    record = await ask(client, query, target, settings)
                    writer.append(record)
                    self.records[(query.id, target)] = record
                    on_record(record)

            try:
                async with asyncio.TaskGroup() as group:
                    for _ in range(min(settings.concurrency, len(todo))):
                        group.create_task(worker())
            except* GatewayUnavailable as failed:
                raise failed.exceptions[0] from None
        self._valid_bytes = self.checkpoint.stat().st_size

    def rows(self) -> list[dict[str, Any]]:
        """The answers table, one row per query (needs every pair done)."""
        with_messages = any(q.from_messages for q in self.queries)
        failed = set(self.errors())
        return [self._row(q, with_messages, failed) for q in self.queries]

    def _row(self, query: Query, with_messages: bool, failed: set[str]) -> dict[str, Any]:
        row: dict[str, Any] = {"id": query.id, "prompt": query.prompt, "category": query.category,
                               "reference": query.reference}
        if with_messages:
            row["messages"] = [m.model_dump() for m in query.messages]
        for target in self.targets:
            record = self.records[(query.id, target)]
            row[f"answer:{target}"] = record.answer
            row[f"latency_s:{target}"] = record.latency_s
            row[f"tokens:{target}"] = record.completion_tokens
            if self.with_confidence:  # every row the same columns; an answer without logprobs: empty
                confidence = record.confidence
                for field, prefix in COLUMN_PREFIXES.items():
                    row[f"{prefix}:{target}"] = getattr(confidence, field) if confidence else None
            if target in failed:
                row[f"error:{target}"] = record.error
        return row

    def _pairs(self) -> Iterator[Pair]:
        return ((q.id, t) for q in self.queries for t in self.targets)


# -- the answers file ---------------------------------------------------------------------

def write_answers(path: Path, rows: list[dict[str, Any]]) -> None:
    """CSV or JSONL by suffix, replaced atomically: a reader never sees half a file."""
    if path.suffix not in OUTPUT_SUFFIXES:
        raise DataError(f"{path}: the answers file must end in .csv or .jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            if path.suffix == ".csv":
                _write_csv(handle, rows)
            else:
                _write_jsonl(handle, rows)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it owner-only; a data file is not secret
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _write_jsonl(handle: Any, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_csv(handle: Any, rows: list[dict[str, Any]]) -> None:
    writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["id"])
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list) else value
