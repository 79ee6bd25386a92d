"""The id a request is answered, journaled, flagged and sent upstream under: the gateway's own.

A client's `x-request-id` (or the one Ray Serve's proxy passes in, which is the client's when
it sent one) is a correlation id: echoed and logged by the middleware, never a key. Keyed by
it, a client could pick another request's id and overwrite that journaled answer, rate it,
or collide with it in the engine's own request table. The response id (`chatcmpl-<id>`,
`cmpl-<id>`, `resp_<id>`) carries this id; it equals `x-request-id` only when the caller sent
none and the middleware made one up itself.
"""

from __future__ import annotations

import uuid

from starlette.requests import Request

from gateway.middleware import HEADER, request_id


def issued_id(request: Request) -> str:
    correlation = request_id(request)
    if request.headers.get(HEADER) == correlation:  # the caller chose it: not ours to key on
        return uuid.uuid4().hex
    return correlation
