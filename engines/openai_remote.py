"""A tier served by any OpenAI-compatible endpoint: a vLLM or SGLang fleet, a hosted API.

One pooled client per replica forwards each generation: httpx's API over aiohttp's
connection pool (httpx-aiohttp), keeping no cookies between callers (engines/upstream_http.py).
httpcore's own pool polls the socket of every pooled connection each time a request enters or
leaves it, which at 16 concurrent requests took most of the ingress's CPU for a remote tier
(docs/benchmarks.md); aiohttp's pool does not. The upstream's
answers become engine exceptions (engines/errors.py), so the edge, the retries, the
breaker and the fallback treat a remote tier like any other:

    upstream                                          engine exception
    4xx about the request (400, 404, 409, 413, ...)   EngineRequestError with that status
      a 400 over the model's context                  ContextLengthExceeded
    401, 403 (the gateway's own key), 408, 429, 5xx   EngineUnavailable (+ its Retry-After)
    unreachable, reset, timed out                     EngineUnavailable
    an error in a stream it already started           EngineError

An upstream's error text can quote part of the gateway's own key (a 401 from a hosted API
does), so it never travels on: the exception carries the status and the upstream's `code`
and `param`, and the text goes to the log (warning) with anything key-like masked.

What an agent asks (tools, response_format, n, logprobs) goes upstream unchanged and
every choice comes back (engines/openai_wire.py): the upstream honours a field or refuses
it with its own 400, which comes back as above.

The API key is read from the environment by the caller and kept as a SecretStr; it is
sent only with generation calls and appears in no repr, log or error.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import re
import time
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator, Iterator

import httpx
from pydantic import SecretStr

from engines.config import RemoteTierSettings
from engines.errors import (
    ContextLengthExceeded, EngineBusy, EngineError, EngineRequestError, EngineTimedOut, EngineUnavailable,
)
from engines.openai_wire import (
    agentic_fields,
    chat_turn,
    choice_of,
    chunk_index,
    delta_text,
    delta_tool_calls,
    finish,
    logprobs,
)
from engines.sse import data_batches
from engines.streams import joined
from engines.token_count import EstimatedCounter, TokenCounter, TokenizerCounter
from engines.types import (
    AdapterSpec,
    EngineLoad,
    GeneratedChoice,
    GenerationChunk,
    GenerationRequest,
    GenerationResult,
    Usage,
)
from engines.upstream_http import UpstreamClient, endpoint
from engines.upstream_load import FailureSink, UpstreamLoad

logger = logging.getLogger(__name__)

# Refusals that say nothing about the request: the tier is unusable for now.
UNAVAILABLE_4XX = frozenset({401, 403, 408, 429})
# What looks like a credential in an upstream's error text: `sk-...` keys (also masked ones,
# `sk-ab***yz`), a bearer token, an `api_key=...` pair.
SECRET_LIKE = re.compile(r"\b(?:sk|pk|rk)-[\w*.~+/=-]{3,}|\bbearer\s+\S+|\bapi[_-]?key\s*[:=]\s*\S+", re.IGNORECASE)


@dataclass(frozen=True)
class RemoteSpec:
    """How to build one remote engine; plain data so it crosses process boundaries."""

    settings: RemoteTierSettings
    model: str  # the name sent upstream
    max_model_len: int  # checked before sending only when a tokenizer is configured
    stop: tuple[str, ...] = ()
    enable_lora: bool = False
    # Sent when a request names no max_tokens (an upstream would otherwise generate up to its
    # whole context): the gateway's own default cap, and never past the context left.
    max_tokens: int = 4096


class OpenAIRemoteEngine:
    def __init__(
        self,
        spec: RemoteSpec,
        client: httpx.AsyncClient,
        api_key: SecretStr | None = None,
        counter: TokenCounter | None = None,
        upstream: UpstreamLoad | None = None,
    ) -> None:
        self._spec = spec
        self._client = client
        self._endpoints: dict[str, httpx.URL] = {}  # path -> absolute URL (`endpoint`)
        self._api_key = api_key
        self._counter: TokenCounter = counter or EstimatedCounter()
        self._upstream = upstream
        self._in_flight = 0
        self._adapters: set[str] = set()
        self._closing: set[asyncio.Task[None]] = set()

    @classmethod
    def build(
        cls, spec: RemoteSpec, api_key: SecretStr | None, failures: FailureSink | None = None
    ) -> "OpenAIRemoteEngine":
        settings = spec.settings
        if "max_keepalive_connections" in settings.model_fields_set:
            logger.warning("max_keepalive_connections no longer applies: idle connections to the upstream close "
                           "after their keep-alive expiry instead (aiohttp's pool)")
        client = UpstreamClient(
            settings.base_url, httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s),
            settings.max_connections,
        )
        counter = TokenizerCounter.load(settings.tokenizer) if settings.tokenizer else EstimatedCounter()
        upstream = None
        if settings.metrics_url is not None:
            upstream = UpstreamLoad(
                client, settings.metrics_url, settings.metrics_interval_s, settings.metrics_stale_s, failures
            )
        return cls(spec, client, api_key, counter, upstream)

    def __repr__(self) -> str:
        return f"OpenAIRemoteEngine(base_url={self._spec.settings.base_url!r}, model={self._spec.model!r})"

    # ---- Engine protocol -----------------------------------------------------

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        prompt_tokens = self._checked_prompt(request)
        with self._tracked():
            body = _json(await self._send(request, prompt_tokens))
        first, *more = _choices(body)
        usage = _usage(body.get("usage"), prompt_tokens, _produced([first, *more]), self._counter)
        return GenerationResult(
            text=first.text, finish_reason=first.finish_reason, usage=usage, tool_calls=first.tool_calls,
            logprobs=first.logprobs, more=more,
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        prompt_tokens = self._checked_prompt(request)
        with self._tracked():
            async with self._streaming(request, prompt_tokens) as response:
                # Leaving this block early (the consumer closed us, or was cancelled)
                # closes the response, and with it the connection: the upstream aborts.
                async for chunk in _Relay(self._counter, prompt_tokens).chunks(_event_batches(response)):
                    yield chunk

    async def load(self) -> EngineLoad:
        return self.load_now()

    def load_now(self) -> EngineLoad:
        """The upstream vLLM's own queue when a fresh scrape has it, else what this replica
        has in flight. A scrape lags: never report fewer than are in flight here."""
        scraped = self.upstream_now()
        if scraped is None:
            return self.in_flight_now()
        total = max(scraped.running + scraped.waiting, self._in_flight)
        running = min(scraped.running, total)
        return EngineLoad(running=running, waiting=total - running)

    def in_flight_now(self) -> EngineLoad:
        """Only this client's requests: what several callers of one upstream add up."""
        return EngineLoad(running=self._in_flight)

    def upstream_now(self) -> EngineLoad | None:
        """The upstream's whole queue from a fresh scrape (every caller's requests), if any."""
        return self._upstream.latest() if self._upstream is not None else None

    # ---- adapters (AdapterHost) ----------------------------------------------------

    async def add_adapter(self, adapter: AdapterSpec) -> None:
        """The upstream owns its LoRA modules: check that it serves the one mapped to."""
        model = self._model(adapter)
        try:
            response = await self._client.get("/models", headers=self._headers())
        except httpx.HTTPError as exc:
            raise _unreachable(exc) from exc
        _raise_for_status(response)
        served = {entry.get("id") for entry in _json(response).get("data", [])}
        if model not in served:
            raise EngineRequestError(
                f"the upstream serves no model '{model}' for adapter '{adapter.name}'", param="model"
            )
        self._adapters.add(adapter.name)

    async def adapters(self) -> set[str]:
        return set(self._adapters)

    # ---- replica life cycle ----------------------------------------------------------

    async def run(self) -> None:
        if self._upstream is not None:
            await self._upstream.run()

    async def check_health(self) -> None:
        """Nothing to check here: an unreachable upstream is the breaker's business, and
        restarting this replica would not bring it back."""

    def shutdown(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop left: its sockets went with it
        task = loop.create_task(self.aclose())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        await self._client.aclose()

    # ---- internals -------------------------------------------------------------------

    def _checked_prompt(self, request: GenerationRequest) -> int:
        prompt = self._counter.prompt(request)
        wanted = request.sampling.max_tokens or 1
        limit = self._spec.max_model_len
        if not self._counter.estimated and prompt + wanted > limit:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {limit} tokens. However, you requested "
                f"{prompt + wanted} tokens ({prompt} in the prompt, {wanted} for the completion). "
                "Shorten the prompt or max_tokens."
            )
        return prompt

    @asynccontextmanager
    async def _streaming(self, request: GenerationRequest, prompt_tokens: int) -> AsyncIterator[httpx.Response]:
        path, body = self._payload(request, prompt_tokens, stream=True)
        try:
            async with self._client.stream("POST", self._url(path), json=body, headers=self._headers()) as response:
                if response.status_code >= 400:
                    await response.aread()
                    _raise_for_status(response)
                yield response
        except httpx.HTTPError as exc:
            raise _unreachable(exc, self._saturated()) from exc

    async def _send(self, request: GenerationRequest, prompt_tokens: int) -> httpx.Response:
        path, body = self._payload(request, prompt_tokens, stream=False)
        try:
            response = await self._client.post(self._url(path), json=body, headers=self._headers())
        except httpx.HTTPError as exc:
            raise _unreachable(exc, self._saturated()) from exc
        _raise_for_status(response)
        return response

    def _payload(self, request: GenerationRequest, prompt_tokens: int, stream: bool) -> tuple[str, dict[str, Any]]:
        sampling = request.sampling
        body: dict[str, Any] = {
            "model": self._model(request.adapter),
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "stream": stream,
            "max_tokens": sampling.max_tokens or self._default_max_tokens(prompt_tokens),
        }
        if stop := [*sampling.stop, *self._spec.stop]:
            body["stop"] = stop
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if stream:
            body["stream_options"] = {"include_usage": True}
        body.update(agentic_fields(request.agentic, chat=request.messages is not None))
        if request.messages is not None:
            body["messages"] = [chat_turn(turn) for turn in request.messages]
            return "/chat/completions", body
        body["prompt"] = request.prompt or ""
        return "/completions", body

    def _default_max_tokens(self, prompt_tokens: int) -> int:
        left = self._spec.max_model_len - prompt_tokens
        return max(1, min(self._spec.max_tokens, left))

    def _model(self, adapter: AdapterSpec | None) -> str:
        if adapter is None:
            return self._spec.model
        names = self._spec.settings.adapter_models
        return names.get(adapter.domain or "") or names.get(adapter.name) or adapter.name

    def _url(self, path: str) -> httpx.URL:
        url = self._endpoints.get(path)
        if url is None:
            url = self._endpoints[path] = endpoint(self._client.base_url, path)
        return url

    def _headers(self) -> dict[str, str]:
        if self._api_key is None:
            return {}
        return {"authorization": f"Bearer {self._api_key.get_secret_value()}"}

    def _saturated(self) -> bool:
        """More requests in flight here than connections: some were waiting for one."""
        return self._in_flight > self._spec.settings.max_connections

    @contextmanager
    def _tracked(self) -> Iterator[None]:
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1


class _Relay:
    """One upstream stream turned into engine chunks with cumulative usage (over all its
    choices).

    The upstream's usage comes in its own event after the finish: the last finishing chunk
    is held until then so it carries the exact count (an earlier one goes on when the next
    choice finishes). Until that, a token per logprob, else per delta."""

    def __init__(self, counter: TokenCounter, prompt_tokens: int) -> None:
        self._counter = counter
        self._prompt_tokens = prompt_tokens
        self._tokens = 0
        self._produced: list[str] = []
        self._usage: Any = None
        self._unfinished: set[int] = set()
        self._held: GenerationChunk | None = None  # the latest finishing chunk, not yet sent

    async def chunks(self, batches: AsyncIterator[list[dict[str, Any]]]) -> AsyncIterator[GenerationChunk]:
        async for events in batches:
            for chunk in joined(self._ready(events)):  # what arrived together goes on together
                yield chunk
        if self._held is None or self._unfinished:
            raise EngineError("the upstream ended its stream without a finish reason")
        final = _usage(self._usage, self._prompt_tokens, "".join(self._produced), self._counter)
        yield self._held.model_copy(update={"usage": final})

    def _ready(self, events: list[dict[str, Any]]) -> list[GenerationChunk]:
        """The chunks these events let go on: every increment, and a held finish once another
        choice finishes (the last one waits for the usage)."""
        ready: list[GenerationChunk] = []
        for event in events:
            self._usage = event.get("usage") or self._usage
            for choice in event.get("choices") or []:
                chunk = self._chunk(choice)
                if chunk.finish_reason is not None:
                    ready += [self._held] if self._held is not None else []
                    self._held = chunk
                elif chunk.text or chunk.tool_calls or chunk.logprobs:
                    ready.append(chunk)
        return ready

    def _chunk(self, choice: dict[str, Any]) -> GenerationChunk:
        index, text, calls = chunk_index(choice), delta_text(choice), delta_tool_calls(choice)
        tokens = logprobs(choice.get("logprobs"))
        finish_reason = choice.get("finish_reason")
        self._produced += [text, *((call.name or "") + call.arguments for call in calls)]
        self._tokens += len(tokens) if tokens else int(bool(text or calls))
        if finish_reason is None:
            self._unfinished.add(index)
        else:
            self._unfinished.discard(index)
        return GenerationChunk(
            text=text, finish_reason=finish(finish_reason) if finish_reason is not None else None,
            usage=self._interim(), index=index, tool_calls=calls, logprobs=tokens,
        )

    def _interim(self) -> Usage:
        return Usage(prompt_tokens=self._prompt_tokens, completion_tokens=self._tokens, estimated=True)


def _usage(raw: Any, prompt_tokens: int, text: str, counter: TokenCounter) -> Usage:
    """The upstream's usage, or our own count when it sent none."""
    if isinstance(raw, dict) and "completion_tokens" in raw:
        return Usage(prompt_tokens=raw.get("prompt_tokens") or 0, completion_tokens=raw["completion_tokens"] or 0)
    return Usage(prompt_tokens=prompt_tokens, completion_tokens=counter.text(text), estimated=counter.estimated)


async def _event_batches(response: httpx.Response) -> AsyncIterator[list[dict[str, Any]]]:
    """The JSON events of a server-sent event stream, up to `[DONE]`, those of one network
    read together (engines/sse.py). The events before a failing one still go on first."""
    async for payloads in data_batches(response):
        batch: list[dict[str, Any]] = []
        try:
            for data in payloads:
                batch.append(_event(data))
        except EngineError:
            if batch:
                yield batch
            raise
        yield batch


def _event(data: str) -> dict[str, Any]:
    try:
        event = json.loads(data)
    except ValueError as exc:
        raise EngineError("the upstream sent an event that is not JSON") from exc
    if not isinstance(event, dict):
        raise EngineError("the upstream sent an event that is not a JSON object")
    if "error" in event:
        # Already answered 200: the failure can only go on in-band, as an engine error.
        error = event["error"] if isinstance(event["error"], dict) else {"message": event["error"]}
        code = _logged(error, "a stream it had started")
        raise EngineError("the upstream failed mid-stream" + (f" ({code})" if code else ""))
    return event


def _choices(body: dict[str, Any]) -> list[GeneratedChoice]:
    """Every choice of a whole answer, choice 0 first."""
    raw = [choice for choice in body.get("choices") or [] if isinstance(choice, dict)]
    if not raw:
        raise EngineError("the upstream answered without a choice")
    return sorted((choice_of(choice, i) for i, choice in enumerate(raw)), key=lambda choice: choice.index)


def _produced(choices: list[GeneratedChoice]) -> str:
    """What the choices generated, to count when the upstream sends no usage."""
    calls = (call.name + call.arguments for choice in choices for call in choice.tool_calls)
    return "".join(choice.text for choice in choices) + "".join(calls)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise EngineError(f"the upstream answered {response.status_code} with no JSON body") from exc
    if not isinstance(body, dict):
        raise EngineError("the upstream answered with a JSON body that is not an object")
    return body


def _raise_for_status(response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    error = _error_fields(response)
    code = _logged(error, f"{status}")
    param = _field(error, "param")
    if status in UNAVAILABLE_4XX or status >= 500:
        retry_after = retry_after_s(response.headers.get("retry-after"))
        data = {"retry_after_s": retry_after} if retry_after is not None else {}
        raise EngineUnavailable(f"the upstream answered {status}", **data)
    if code == "context_length_exceeded" or "maximum context length" in str(error.get("message") or ""):
        raise ContextLengthExceeded("the prompt and max_tokens exceed the upstream model's context length", status=400)
    raise EngineRequestError(_summary(status, code, param), status=status, code=code, param=param)


def _summary(status: int, code: str | None, param: str | None) -> str:
    named = ", ".join(part for part in (code, f"param '{param}'" if param else None) if part)
    return f"the upstream refused the request ({status}" + (f", {named})" if named else ")")


def _logged(error: dict[str, Any], what: str) -> str | None:
    """Log an upstream error's text, masked; its `code`, the one part passed on."""
    code = _field(error, "code")
    logger.warning("the upstream failed (%s, code %s): %s", what, code, redacted(str(error.get("message") or "")))
    return code


def _field(error: dict[str, Any], name: str) -> str | None:
    value = error.get(name)
    return redacted(value)[:64] if isinstance(value, str) and value else None


def redacted(text: str) -> str:
    """`text` with whatever looks like a key or a bearer token masked, cut to 500 characters."""
    return SECRET_LIKE.sub("[redacted]", text)[:500]


def _error_fields(response: httpx.Response) -> dict[str, Any]:
    """OpenAI's `{"error": {...}}`, or the flat `{"object": "error", ...}` older vLLMs send."""
    try:
        body = response.json()
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    error = body.get("error", body)
    return error if isinstance(error, dict) else {"message": str(error)}


def _unreachable(exc: httpx.HTTPError, saturated: bool = False) -> EngineUnavailable:
    # Not every timeout says the upstream is down: a read timeout is an answer slower than
    # `timeout_s` (a long one, asked for by the client), a pool timeout this replica's own
    # connections all in use. The breaker judges those apart (engines/resilience.py).
    # aiohttp's pool reports its wait for a free connection as a connect timeout: with more
    # requests in flight than connections (`saturated`) that is the pool's, not the upstream's.
    if isinstance(exc, httpx.ReadTimeout):
        return EngineTimedOut(f"the upstream sent nothing within timeout_s ({type(exc).__name__})")
    if isinstance(exc, httpx.PoolTimeout) or (saturated and isinstance(exc, httpx.TimeoutException)):
        return EngineBusy(f"every connection to the upstream is in use: {exc}")
    return EngineUnavailable(f"the upstream could not be reached: {type(exc).__name__}: {exc}")


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """Seconds a Retry-After header asks for: a number, or an HTTP date."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))
