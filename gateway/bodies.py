"""Request bodies: read (content type, size, encoding, syntax), then validated into a
wire model. The OpenAI endpoints, feedback and the admin API read bodies so."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from gateway.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from wire.chat import ChatCompletionRequest, CompletionRequest
from gateway.settings import LimitSettings

W = TypeVar("W", bound=BaseModel)
WIRE_MODELS: dict[str, type[ChatCompletionRequest] | type[CompletionRequest]] = {
    "chat": ChatCompletionRequest, "completions": CompletionRequest,
}


async def parse_body(request: Request, endpoint: str, limit: int) -> ChatCompletionRequest | CompletionRequest:
    return validated(WIRE_MODELS[endpoint], await read_json(request, limit))


def validated(model: type[W], payload: Any) -> W:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise validation_error(exc) from None


async def read_json(request: Request, limit: int) -> Any:
    """A JSON body, checked for content type, size, encoding and syntax."""
    return parse_json(await read_body(request, limit))


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, once its content type and its size are checked.

    A body is read only as application/json: a browser sends other types (a form, text/plain,
    a Blob with no type at all) cross-site without asking first, so a web page could post
    to a gateway on the user's machine. No body and no content type is an empty body (an
    admin call whose fields are all optional)."""
    content_type = request.headers.get("content-type")
    if content_type is not None and content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType(f"Content-Type must be application/json, got '{content_type}'.")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body is {declared} bytes; the limit is {limit} bytes.")
    raw = await _read_limited(request, limit)
    if content_type is None and raw:
        raise UnsupportedMediaType("Content-Type must be application/json; the request sent none.")
    return raw


def parse_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"Request body is not valid UTF-8 (byte {exc.start}).") from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"Could not parse the JSON body: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    except RecursionError:  # a body of thousands of nested brackets
        raise InvalidRequest("The JSON body is nested too deeply.") from None
    except ValueError:  # Python's int-conversion limit: an integer of over 4,300 digits
        raise InvalidRequest("The JSON body holds a number too long to read.") from None
    if _SURROGATE_ESCAPE.search(text) and _holds_lone_surrogate(payload):
        raise InvalidRequest(
            "The JSON body holds a lone UTF-16 surrogate escape (\\ud800-\\udfff without its pair), "
            "which is not text.", code="invalid_unicode",
        )
    return payload


# JSON may escape a surrogate half on its own ("\ud800"); json.loads turns it into a str no
# encoder accepts, and every later step (tokenizer, journal, the answer or an error message
# quoting it) fails on it as a 500. Only a body with such an escape is walked.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _holds_lone_surrogate(payload: Any) -> bool:
    pending = [payload]  # a loop, not recursion: the body may be nested ~1000 deep
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def check_limits(body: ChatCompletionRequest | CompletionRequest, limits: LimitSettings) -> None:
    """Limits the schema cannot know: they come from settings."""
    messages = getattr(body, "messages", None)
    if messages is not None and len(messages) > limits.max_messages:
        raise InvalidRequest(
            f"Too many messages: {len(messages)}; the limit is {limits.max_messages}.",
            param="messages", code="too_many_messages",
        )
    wanted = body.requested_max_tokens() if isinstance(body, ChatCompletionRequest) else body.max_tokens
    if wanted is not None and wanted > limits.max_tokens:
        param = "max_completion_tokens" if getattr(body, "max_completion_tokens", None) else "max_tokens"
        raise InvalidRequest(
            f"{param} is {wanted}; the limit is {limits.max_tokens}.", param=param, code="max_tokens_exceeded",
        )


async def _read_limited(request: Request, limit: int) -> bytes:
    # Chunked bodies carry no content-length: count while reading.
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes.")
        parts.append(part)
    return b"".join(parts)


def validation_error(exc: ValidationError) -> InvalidRequest:
    first = exc.errors(include_url=False)[0]
    if first.get("type") == "model_type" and not first["loc"]:  # the body itself; deeper, a field
        return InvalidRequest("The request body must be a JSON object.")
    param = ".".join(str(part) for part in first["loc"]) or None
    if first.get("type") == "extra_forbidden":
        return InvalidRequest(
            f"Unrecognized request argument supplied: {param}", param=param, code="unknown_parameter"
        )
    message = first["msg"]
    if param:
        message = f"Invalid value for '{param}': {message}"
    return InvalidRequest(message, param=param, code="invalid_value")
