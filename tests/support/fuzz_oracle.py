"""What a fuzzed request's answer may be: below 500 (a 503 the API documents aside), and
every error OpenAI-shaped, in the body or in-band in a stream.

    ok              any 1xx-4xx answer whose error (if any) is OpenAI-shaped
    documented_503  a tier down or not ready (type service_unavailable), or /ready's 503
    server_error    any other 5xx, or a stream that ended on an internal error (api_error)
    bad_error_shape an error answer without {"error": {message, type, param, code}}

Shared by tests/api/test_fuzz_api.py and load_tests/fuzz.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

ERROR_KEYS = {"message", "type", "param", "code"}
FAILURES = ("server_error", "bad_error_shape")


@dataclass(frozen=True)
class Verdict:
    outcome: str  # ok, documented_503, server_error, bad_error_shape
    why: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome in FAILURES


def judge(method: str, path: str, status: int, content_type: str, body: bytes) -> Verdict:
    if status >= 500:
        if status == 503 and (path.split("?")[0] == "/ready" or _error_type(body) == "service_unavailable"):
            return Verdict("documented_503")
        return Verdict("server_error", f"{status}: {body[:300]!r}")
    if status >= 400 and method != "HEAD":
        problem = error_shape_problem(body)
        return Verdict("bad_error_shape", problem) if problem else Verdict("ok")
    if status < 300 and "text/event-stream" in content_type:
        return _stream(body)
    return Verdict("ok")


def error_shape_problem(body: bytes) -> str | None:
    """Why `body` is not an OpenAI error; None when it is one."""
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return f"not an OpenAI error body: {body[:200]!r}"
    return _error_problem(error)


def _error_problem(error: Any) -> str | None:
    if not isinstance(error, dict) or set(error) != ERROR_KEYS:
        return f"error keys are not {sorted(ERROR_KEYS)}: {error!r:.200}"
    if not isinstance(error["message"], str) or not error["message"]:
        return "error message is not a non-empty string"
    if "Traceback (most recent call last)" in error["message"]:
        return "error message carries a traceback"
    return None


def _error_type(body: bytes) -> str | None:
    try:
        return json.loads(body)["error"]["type"]
    except (ValueError, KeyError, TypeError):
        return None


def _stream(body: bytes) -> Verdict:
    """An error sent in-band after the stream started: chat's `{"error": {...}}` chunk or the
    Responses API's `error` event (whose nested `error` is the same object)."""
    for line in body.decode("utf-8", "replace").splitlines():
        if not line.startswith("data:") or line.strip() == "data: [DONE]":
            continue
        try:
            event = json.loads(line[5:])
        except ValueError:
            return Verdict("bad_error_shape", f"a stream event is not JSON: {line[:200]!r}")
        error = event.get("error") if isinstance(event, dict) else None
        if error is None:
            continue
        problem = _error_problem(error)
        if problem:
            return Verdict("bad_error_shape", f"in-band: {problem}")
        if error["type"] == "api_error":
            return Verdict("server_error", f"in-band: {error['message'][:200]}")
    return Verdict("ok")
