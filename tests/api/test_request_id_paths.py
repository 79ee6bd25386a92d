"""Unsafe `x-request-id` values are never echoed or used: the gateway generates its own id.

Through the in-process app (conftest's `client`, fake engines), plus the middleware on its
own for what an HTTP client cannot send.
"""

from __future__ import annotations

import re

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from gateway.middleware import HEADER, RequestIdMiddleware, _incoming_id, request_id

CHAT = "/v1/chat/completions"
BODY = {"model": "small", "messages": [{"role": "user", "content": "hello world"}], "max_tokens": 3}
GENERATED = re.compile(r"^[0-9a-f]{32}$")  # uuid4().hex

UNSAFE = [
    pytest.param("x" * 65, id="over-long"),
    pytest.param("a" * 4096, id="very-long"),
    pytest.param("abc\r\nset-cookie: session=evil", id="crlf-injection"),
    pytest.param("abc\ndef", id="newline-inside"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\x01b\x7f", id="control-chars"),
    pytest.param("a\tb", id="tab"),
    pytest.param("a b", id="space"),
    pytest.param("id;rm -rf /", id="shell-chars"),
    pytest.param("<script>alert(1)</script>", id="html"),
    pytest.param("caf\u00e9".encode("utf-8"), id="non-ascii-utf8"),
    pytest.param("\u00e9t\u00e9".encode("latin-1"), id="non-ascii-latin1"),
    pytest.param("\u65e5\u672c".encode("utf-8"), id="cjk"),
]


@pytest.mark.parametrize("value", UNSAFE)
def test_unsafe_id_is_replaced_by_a_generated_one(client, value):
    r = client.post(CHAT, json=BODY, headers={HEADER: value})
    assert r.status_code == 200, r.text
    echoed = r.headers[HEADER]
    raw = value if isinstance(value, str) else value.decode("latin-1")
    assert echoed != raw
    assert GENERATED.match(echoed)
    # The id the request ran under (the completion id) is the generated one too.
    assert r.json()["id"] == f"chatcmpl-{echoed}"
    assert "set-cookie" not in r.headers


@pytest.mark.parametrize("value", UNSAFE[:4])
def test_unsafe_id_is_replaced_on_error_responses_too(client, value):
    r = client.post(CHAT, json={"model": "nope", "messages": []}, headers={HEADER: value})
    assert r.status_code >= 400 and "error" in r.json()
    assert GENERATED.match(r.headers[HEADER])


def test_each_unsafe_request_gets_its_own_generated_id(client):
    ids = {client.get("/v1/models", headers={HEADER: "x" * 100}).headers[HEADER] for _ in range(3)}
    assert len(ids) == 3 and all(GENERATED.match(i) for i in ids)


@pytest.mark.parametrize("value", ["A" * 64, "req_1.2-3", "0", "a.b_c-D"])
def test_safe_id_up_to_64_chars_is_kept(client, value):
    r = client.post(CHAT, json=BODY, headers={HEADER: value})
    # Echoed as the caller's correlation id; the request itself runs under the gateway's own.
    assert r.headers[HEADER] == value
    assert r.json()["id"] != f"chatcmpl-{value}" and GENERATED.match(r.json()["id"].removeprefix("chatcmpl-"))


def test_missing_or_empty_id_gets_a_generated_one(client):
    assert GENERATED.match(client.get("/v1/models").headers[HEADER])
    assert GENERATED.match(client.get("/v1/models", headers={HEADER: ""}).headers[HEADER])


# -- the middleware alone -------------------------------------------------------------------

def echo_app(echo: bool = True) -> TestClient:
    async def seen(request):
        return JSONResponse({"rid": request_id(request)})

    return TestClient(RequestIdMiddleware(Starlette(routes=[Route("/", seen)]), echo=echo))


def test_handler_sees_the_same_generated_id_that_is_echoed():
    r = echo_app().get("/", headers={HEADER: "bad id"})
    assert r.json()["rid"] == r.headers[HEADER] and GENERATED.match(r.json()["rid"])


def test_no_echo_behind_a_proxy_but_the_handler_still_gets_a_safe_id():
    r = echo_app(echo=False).get("/", headers={HEADER: "bad\x01id"})
    assert HEADER not in r.headers
    assert GENERATED.match(r.json()["rid"])


@pytest.mark.parametrize("raw", [b"bad\x01id", b"x" * 65, b"\xc3\xa9", b"", b"a b"])
def test_incoming_id_refuses_unsafe_raw_bytes(raw):
    assert _incoming_id({"headers": [(b"x-request-id", raw)]}) is None


def test_incoming_id_keeps_a_safe_value_and_ignores_other_headers():
    assert _incoming_id({"headers": [(b"x-other", b"zzz"), (b"x-request-id", b"ok-1")]}) == "ok-1"
    assert _incoming_id({"headers": [(b"x-other", b"zzz")]}) is None


# A pattern ending in `$` also matches before a final "\n": the id must match whole.
def test_incoming_id_refuses_a_trailing_newline():
    assert _incoming_id({"headers": [(b"x-request-id", b"abc\n")]}) is None


def test_trailing_newline_id_is_not_echoed_by_the_app(client):
    r = client.post(CHAT, json=BODY, headers={HEADER: "abc\n"})
    assert GENERATED.match(r.headers[HEADER])
    assert "\n" not in r.json()["id"]
