"""Generated HTTP requests for the gateway's whole API, well-formed and malformed.

The bodies come from the gateway's own request models (wire/chat.py, wire/responses.py,
the feedback and admin bodies) through their JSON schemas, then are broken one way at a
time: a required field dropped, a value of the wrong type or size, an unknown field,
deep nesting; or raw bytes (truncated JSON, invalid UTF-8, huge numbers); or odd headers,
methods and paths; or a body over the size limit.

Shared by the in-process fuzz test (tests/api/test_fuzz_api.py) and the fuzz run against
the real app (load_tests/fuzz.py). Well-formed generation requests ask for at most 8
tokens and 2 choices, whatever else is broken, so that real CPU engines answer quickly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from hypothesis import strategies as st
from pydantic import BaseModel

from gateway.admin import LoadBody, RegisterBody, RolloutBody, VersionBody
from gateway.feedback import FeedbackRequest
from tests.support.fuzz_schema import NASTY_TEXT, SchemaStrategies, Strategy, json_values, text
from wire.chat import ChatCompletionRequest, CompletionRequest
from wire.responses import ResponsesRequest

# A budget field is never dropped and never given a large valid value: an answer of
# thousands of tokens would take minutes on a CPU engine.
BUDGET_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens", "n")
BAD_BUDGETS: list[Any] = [0, -1, 10**6, 10**30, -(10**30), 2**63, 1.5, "eight", [], {}, float("nan")]
NASTY_NUMBERS: list[Any] = [
    0, -1, 2**31, 2**53 + 1, 2**63, 2**64, 10**30, -(10**30), 1e308, -1e308, 5e-324, -0.0,
    float("nan"), float("inf"), float("-inf"),
]
# Paths an admin load/register may be pointed at: none of them is an adapter or a router.
ODD_PATHS = ["", ".", "..", "/", "/etc/passwd", "/dev/null", "/proc/self/environ", "../../..", "~", "a\x00b",
             "/tmp/\u202e", "C:\\Windows", "file:///etc/passwd", "http://127.0.0.1:1/x", "/" * 300]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
CONTENT_TYPES = [
    "application/json; charset=utf-8", "APPLICATION/JSON", "application/json;;", "text/plain",
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json-patch+json",
    "", ";", "*/*", "application/json, text/plain",
]


@dataclass(frozen=True)
class Credentials:
    user: str  # an API key with the user role
    admin: str  # an API key with the admin role
    admin_config: str | None = None  # the configured admin key (GATEWAY_ADMIN__API_KEY)


@dataclass(frozen=True)
class Target:
    """What the fuzzer knows of the app under test."""

    credentials: Credentials
    models: Sequence[str]  # ids /v1/models lists, and `auto`
    domains: Sequence[str] = ()  # adapter domains
    max_body_bytes: int = 1_000_000


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # `{domain}` is filled in
    body: type[BaseModel] | None = None
    role: str = "user"  # whose key it takes: user, admin, none


ROUTES = [
    Route("POST", "/v1/chat/completions", ChatCompletionRequest),
    Route("POST", "/v1/completions", CompletionRequest),
    Route("POST", "/v1/responses", ResponsesRequest),
    Route("POST", "/v1/feedback", FeedbackRequest),
    Route("GET", "/v1/models"),
    Route("GET", "/health", role="none"),
    Route("GET", "/ready", role="none"),
    Route("GET", "/metrics", role="none"),
    Route("GET", "/admin/config", role="admin"),
    Route("GET", "/admin/adapters", role="admin"),
    Route("POST", "/admin/adapters", LoadBody, "admin"),
    Route("POST", "/admin/adapters/{domain}/activate", VersionBody, "admin"),
    Route("POST", "/admin/adapters/{domain}/rollback", VersionBody, "admin"),
    Route("POST", "/admin/adapters/{domain}/candidate", VersionBody, "admin"),
    Route("DELETE", "/admin/adapters/{domain}", role="admin"),
    Route("GET", "/admin/router", role="admin"),
    Route("POST", "/admin/router", RegisterBody, "admin"),
    Route("POST", "/admin/router/activate", VersionBody, "admin"),
    Route("POST", "/admin/router/rollback", VersionBody, "admin"),
    Route("POST", "/admin/router/candidate", VersionBody, "admin"),
    Route("GET", "/admin/rollout", role="admin"),
    Route("POST", "/admin/rollout/promote", RolloutBody, "admin"),
    Route("POST", "/admin/rollout/demote", RolloutBody, "admin"),
    Route("GET", "/admin/rollout/events", role="admin"),
]


@dataclass(frozen=True)
class FuzzRequest:
    kind: str  # how it was made: valid, mutated, raw, headers, method, path, oversized
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    chunked: bool = False  # sent without a content-length

    def describe(self, secrets: Sequence[str] = ()) -> dict[str, Any]:
        """For a report: the request with keys masked and the body cut short."""
        headers = dict(self.headers)
        for name, value in headers.items():
            for secret in filter(None, secrets):
                value = value.replace(secret, "<key>")
            headers[name] = value[:200]
        body = (self.body or b"")[:600].decode("utf-8", "backslashreplace")
        return {"kind": self.kind, "method": self.method, "path": self.path[:300], "headers": headers,
                "body": body, "body_bytes": len(self.body or b""), "chunked": self.chunked}


# Weights of the request kinds; the real-app run sends fewer well-formed generation requests.
DEFAULT_WEIGHTS = {"valid": 3, "mutated": 3, "raw": 2, "headers": 2, "method": 1, "path": 1, "oversized": 1}


def fuzz_requests(target: Target, weights: Mapping[str, int] = DEFAULT_WEIGHTS) -> Strategy:
    """Requests of every kind, in proportion to `weights`."""
    makers = {
        "valid": lambda: _valid(target), "mutated": lambda: _mutated(target), "raw": lambda: _raw(target),
        "headers": lambda: _odd_headers(target), "method": lambda: _wrong_method(target),
        "path": lambda: _odd_path(target), "oversized": lambda: _oversized(target),
    }
    kinds = [kind for kind, weight in weights.items() for _ in range(weight)]
    return st.sampled_from(kinds).flatmap(lambda kind: makers[kind]())


# ---- bodies --------------------------------------------------------------------------------


def _overrides(target: Target) -> dict[str, Strategy]:
    budget = st.integers(1, 8)
    # Mostly a served name, sometimes any text (one_of alone would pick text too often).
    names = [*target.models, "auto"]
    models = st.sampled_from([*names, *names, None]).flatmap(lambda m: text() if m is None else st.just(m))
    versions = st.one_of(text(), st.sampled_from([f"{d}-v1" for d in target.domains] or ["v1"]))
    return {
        "model": models, "max_tokens": budget, "max_completion_tokens": budget,
        "max_output_tokens": budget, "n": st.integers(1, 2),
        "path": st.one_of(st.sampled_from(ODD_PATHS), text()), "version": st.one_of(st.none(), versions),
        "category": st.one_of(st.sampled_from(["billing", "refund", "orders", " Billing "]), text(1, 40)),
        "request_id": st.one_of(text(1, 40), st.sampled_from(["chatcmpl-x", "cmpl-", "a" * 200])),
    }


# Built once per model and target: building a strategy costs more than drawing from it.
_DOCUMENTS: dict[tuple[type[BaseModel], int], tuple[Target, Strategy]] = {}


def _document(target: Target, model: type[BaseModel]) -> Strategy:
    built = _DOCUMENTS.get((model, id(target)))
    if built is None or built[0] is not target:
        built = _DOCUMENTS[(model, id(target))] = (target, _build_document(target, model))
    return built[1]


def _build_document(target: Target, model: type[BaseModel]) -> Strategy:
    """A body `model` accepts as to its schema (its own validators may still refuse it); a
    generation request always carries a small budget, and mostly ends on a user's words
    (the schema alone rarely gets past the last-turn check)."""
    values = SchemaStrategies(model.model_json_schema(), _overrides(target)).values()
    budget = {ChatCompletionRequest: "max_tokens", CompletionRequest: "max_tokens",
              ResponsesRequest: "max_output_tokens"}.get(model)
    if budget is None:
        return values
    ending = st.one_of(st.none(), text(1), st.sampled_from(["hello", "How do I get a refund?", "где мой заказ"]))
    return st.tuples(values, st.integers(1, 8), ending).map(lambda t: _servable({**t[0], budget: t[1]}, t[2]))


def _servable(body: dict[str, Any], words: str | None) -> dict[str, Any]:
    if words is None:
        return body
    if isinstance(body.get("messages"), list):
        return {**body, "messages": [*body["messages"], {"role": "user", "content": words}]}
    if isinstance(body.get("input"), list):
        return {**body, "input": [*body["input"], {"role": "user", "content": words}]}
    return body


def _encode(value: Any, ascii_only: bool, strict: bool = True) -> bytes:
    # NaN and Infinity are written as Python writes them (not JSON, but json.loads reads them).
    # A lone surrogate is escaped (strict) or written as bytes no UTF-8 decoder accepts.
    text = json.dumps(value, ensure_ascii=ascii_only, allow_nan=True)
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raw = json.dumps(value, allow_nan=True).encode() if strict else text.encode("utf-8", "surrogatepass")
    return NESTED.sub(lambda m: _nested(int(m.group(1))), raw)


# Deep nesting is spliced in as bytes: json.dumps itself stops at Python's recursion limit.
NESTED = re.compile(rb'"__nested_(\d+)__"')


def _nested(depth: int) -> bytes:
    return b"[" * depth + b'"x"' + b"]" * depth if depth % 2 else b'{"a":' * depth + b'"x"' + b"}" * depth


def _routes(role: str | None = None) -> Strategy:
    routes = [r for r in ROUTES if role is None or r.role == role]
    return st.sampled_from(routes)


def _path(target: Target, route: Route) -> Strategy:
    if "{domain}" not in route.path:
        return st.just(route.path)
    domains = st.one_of(st.sampled_from([*target.domains, "refund", "..", "%2e%2e", "a%00b"]), _path_text())
    return domains.map(lambda domain: route.path.replace("{domain}", domain))


def _path_text() -> Strategy:
    # A path segment httpx can send: printable ASCII without the URL's own separators.
    return st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/?#"),
                   min_size=1, max_size=40)


@st.composite
def _valid(draw: st.DrawFn, target: Target) -> FuzzRequest:
    route = draw(_routes())
    body = None
    if route.body is not None:
        body = _encode(draw(_document(target, route.body)), draw(st.booleans()))
    headers = {**_auth(target, route.role), **({"content-type": "application/json"} if body else {})}
    query = draw(_query(route))
    return FuzzRequest("valid", route.method, draw(_path(target, route)) + query, headers, body)


def _query(route: Route) -> Strategy:
    if route.path != "/admin/rollout/events":
        return st.just("")
    return st.one_of(st.just(""), _path_text().map(lambda c: f"?category={c}"))


@st.composite
def _mutated(draw: st.DrawFn, target: Target) -> FuzzRequest:
    route = draw(st.sampled_from([r for r in ROUTES if r.body is not None]))
    value = draw(_broken(draw(_document(target, route.body)))) if route.body else None
    headers = {**_auth(target, route.role), "content-type": "application/json"}
    body = _encode(value, draw(st.booleans()), strict=False)
    return FuzzRequest("mutated", route.method, draw(_path(target, route)), headers, body)


def _broken(value: Any) -> Strategy:
    """`value` with one thing wrong."""
    paths = list(_paths(value))
    keyed = [p for p in paths if p and isinstance(p[-1], str) and p[-1] not in BUDGET_FIELDS]
    containers = [p for p in paths if isinstance(_at(value, p), dict)]
    options = [
        st.sampled_from(paths[1:] or [()]).flatmap(lambda p: _nasty_for(p).map(lambda v: _replace(value, p, v))),
        st.sampled_from(containers or [()]).flatmap(
            lambda p: st.tuples(text(1, 30), json_values()).map(lambda kv: _add(value, p, *kv))),
        st.sampled_from([value]).map(lambda v: [v]) | st.sampled_from([value]).map(lambda v: {"body": v}),
        st.sampled_from(paths or [()]).flatmap(
            lambda p: st.sampled_from([10, 101, 500, 899, 990, 2001]).map(lambda d: _replace(value, p, f"__nested_{d}__"))),
    ]
    if keyed:
        options.append(st.sampled_from(keyed).map(lambda p: _drop(value, p)))
    return st.one_of(options)


def _nasty_for(path: tuple) -> Strategy:
    if path and path[-1] in BUDGET_FIELDS:
        return st.sampled_from(BAD_BUDGETS)
    return st.one_of(
        st.none(), st.booleans(), st.sampled_from(NASTY_NUMBERS), st.integers(), st.floats(),
        st.sampled_from(NASTY_TEXT), text(), json_values(),
    )


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _at(value: Any, path: tuple) -> Any:
    for part in path:
        value = value[part]
    return value


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value, allow_nan=True))


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    copy = _copy(value)
    _at(copy, path[:-1])[path[-1]] = new
    return copy


def _add(value: Any, path: tuple, key: str, new: Any) -> Any:
    copy = _copy(value)
    _at(copy, path)[key] = new
    return copy


def _drop(value: Any, path: tuple) -> Any:
    copy = _copy(value)
    del _at(copy, path[:-1])[path[-1]]
    return copy


# ---- raw bodies, headers, methods, paths, sizes ----------------------------------------------


@st.composite
def _raw(draw: st.DrawFn, target: Target) -> FuzzRequest:
    route = draw(st.sampled_from([r for r in ROUTES if r.method == "POST"]))
    valid = _encode(draw(_document(target, route.body)), True) if route.body else b"{}"
    body = draw(st.one_of(
        st.binary(max_size=200),
        st.integers(0, len(valid)).map(lambda cut: valid[:cut]),  # truncated
        st.sampled_from([b"[" * 100_000, b"{\"a\":" * 50_000, b"9" * 5000, b"-" + b"9" * 4400, b"1e999999",
                         b"NaN", b"Infinity", b"\"\\ud800\"", b"\xff\xfe{}", b"\xef\xbb\xbf{}", b"  ", b"null",
                         b"{\"model\": \"a\", \"model\": 1}", b"{\"a\": \"\\u0000\"}", b"\"" + b"\\" * 3000]),
        st.just(valid).map(lambda v: v.replace(b"\"", b"'")),  # single quotes
        st.just(valid).map(lambda v: b"\xef\xbb\xbf" + v),  # a byte-order mark first
        st.just(valid).map(lambda v: v.decode().encode("utf-16")),
    ))
    headers = {**_auth(target, route.role), "content-type": "application/json"}
    return FuzzRequest("raw", route.method, draw(_path(target, route)), headers, body)


@st.composite
def _odd_headers(draw: st.DrawFn, target: Target) -> FuzzRequest:
    request = draw(st.one_of(_valid(target), _mutated(target)))
    headers = dict(request.headers)
    change = draw(st.sampled_from(["content-type", "no content-type", "auth", "request-id", "encoding", "accept"]))
    if change == "content-type":
        headers["content-type"] = draw(st.one_of(st.sampled_from(CONTENT_TYPES), _header_text()))
    elif change == "no content-type":
        headers.pop("content-type", None)
    elif change == "auth":
        headers.pop("authorization", None)
        headers.update(draw(_odd_auth(target)))
    elif change == "request-id":
        headers["x-request-id"] = draw(st.one_of(_header_text(), st.sampled_from(["", "a" * 8000, "../x", "%e9t%e9"])))
    elif change == "encoding":
        headers["content-encoding"] = draw(st.sampled_from(["gzip", "br", "deflate", "identity", "x"]))
    else:
        headers["accept"] = draw(st.sampled_from(["text/event-stream", "application/xml", "*/*;q=0", ""]))
    # A client cannot send a value with whitespace around it (h11 refuses it before sending).
    headers = {name: value.strip() for name, value in headers.items()}
    return FuzzRequest("headers", request.method, request.path, headers, request.body)


def _header_text() -> Strategy:
    # What a client can put in a header: printable ASCII (h11 refuses control characters).
    return st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)


def _auth(target: Target, role: str) -> dict[str, str]:
    key = {"user": target.credentials.user, "admin": target.credentials.admin}.get(role)
    return {"authorization": f"Bearer {key}"} if key else {}


def _odd_auth(target: Target) -> Strategy:
    creds = target.credentials
    values = [
        "", "Bearer", "Bearer ", "bearer " + creds.user, "Basic dXNlcjpwYXNz", f"Bearer  {creds.user}",
        f"Bearer {creds.user} ", f"Bearer {creds.user}x", f"Bearer {creds.admin}", f"Bearer {creds.user}",
        "Bearer " + "k" * 10_000, "Bearer gw-", "Token abc", f"Bearer {creds.admin_config or 'none'}",
    ]
    return st.one_of(
        st.sampled_from(values), _header_text().map(lambda t: f"Bearer {t}"), _header_text(),
    ).map(lambda value: {"authorization": value})


@st.composite
def _wrong_method(draw: st.DrawFn, target: Target) -> FuzzRequest:
    route = draw(_routes())
    method = draw(st.sampled_from([m for m in METHODS if m != route.method]))
    body = draw(st.one_of(st.none(), st.just(b"{}")))
    return FuzzRequest("method", method, draw(_path(target, route)), _auth(target, route.role), body)


@st.composite
def _odd_path(draw: st.DrawFn, target: Target) -> FuzzRequest:
    prefix = draw(st.sampled_from(["/v1/", "/admin/", "/", "/v1/chat/", "/admin/adapters/", "//", "/v2/"]))
    rest = draw(st.one_of(
        _path_text(),
        st.sampled_from(["../admin/config", "%2e%2e/admin/config", "chat/completions/", "models/", "../../etc/passwd",
                         "config%00", "x" * 8000, "%ff%fe", "%C0%AE%C0%AE/", "rollout/events?category=%00",
                         "chat/completions?stream=true", "adapters/refund/activate/extra"]),
    ))
    if prefix == "//":
        # `//host:port@...` is an authority to the client, which refuses a bad one before sending
        # (`//::` failed CI as InvalidURL): keep the first segment a plain path segment.
        rest = rest.translate(str.maketrans({":": "_", "@": "_", "[": "_", "]": "_"}))
    method = draw(st.sampled_from(METHODS))
    role = "admin" if prefix.startswith("/admin") else "user"
    return FuzzRequest("path", method, prefix + rest, _auth(target, role), draw(st.one_of(st.none(), st.just(b"{}"))))


@st.composite
def _oversized(draw: st.DrawFn, target: Target) -> FuzzRequest:
    route = draw(st.sampled_from([r for r in ROUTES if r.method == "POST"]))
    limit = 1_000_000 if route.path.startswith("/admin") else target.max_body_bytes
    size = limit + draw(st.sampled_from([1, 10, 4096]))
    body = b'{"model": "small", "x": "' + b"a" * size + b'"}'
    headers = {**_auth(target, route.role), "content-type": "application/json"}
    return FuzzRequest("oversized", "POST", draw(_path(target, route)), headers, body, chunked=draw(st.booleans()))
