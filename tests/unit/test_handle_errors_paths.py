"""`deployments.handle_client`: Ray's failures from a DeploymentHandle call become engine errors.

The mapping decides retries and fallback (`engines.resilience` retries only
`EngineUnavailable`), so each branch is pinned here against a fake handle; no Ray runtime.
"""

from __future__ import annotations

import pytest
from ray import exceptions as ray_errors
from ray.serve import exceptions as serve_errors

from deployments.handle_client import HandleEngine, _translate
from engines.errors import ContextLengthExceeded, EngineError, EngineRequestError, EngineUnavailable

REQUEST = object()  # HandleEngine only forwards it


def task_error(cause: BaseException) -> ray_errors.RayTaskError:
    """A RayTaskError as a replica's failed call produces it (host fields given: no Ray runtime)."""
    return ray_errors.RayTaskError("generate", "Traceback: ...", cause, proctitle="replica", pid=1, ip="127.0.0.1")


class FakeMethod:
    """`handle.<method>`: `.remote(...)` returns an awaitable that returns or raises."""

    def __init__(self, outcome: object = None) -> None:
        self.outcome = outcome
        self.calls: list[tuple] = []

    def remote(self, *args):
        self.calls.append(args)

        async def call():
            if isinstance(self.outcome, BaseException):
                raise self.outcome
            return self.outcome

        return call()


class FakeStream:
    """A streaming DeploymentResponseGenerator: yields chunks, then maybe raises."""

    def __init__(self, chunks: list, error: BaseException | None) -> None:
        self._chunks = list(chunks)
        self._error = error
        self.cancelled = False

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._chunks:
            return self._chunks.pop(0)
        if self._error is not None:
            raise self._error
        raise StopAsyncIteration

    def cancel(self) -> None:
        self.cancelled = True


class FakeStreamMethod:
    def __init__(self, stream: FakeStream) -> None:
        self.stream_obj = stream
        self.calls: list[tuple] = []

    def remote(self, *args):
        self.calls.append(args)
        return self.stream_obj


class FakeHandle:
    def __init__(self, outcome: object = None, stream: FakeStream | None = None) -> None:
        self.generate = FakeMethod(outcome)
        self.load = FakeMethod(outcome)
        self.info = FakeMethod(outcome)
        self.probe_adapter = FakeMethod(outcome)
        self.options_seen: list[dict] = []
        self._stream = stream or FakeStream([], None)

    def options(self, **kwargs):
        self.options_seen.append(kwargs)
        streaming = FakeHandle(stream=self._stream)
        streaming.stream = FakeStreamMethod(self._stream)
        return streaming


# -- _translate, branch by branch -------------------------------------------------------------

UNAVAILABLE_CASES = [
    pytest.param(ray_errors.RayActorError(), id="RayActorError"),
    pytest.param(ray_errors.ActorDiedError(), id="ActorDiedError"),
    pytest.param(ray_errors.ActorUnavailableError("connection lost", None), id="ActorUnavailableError"),
    pytest.param(ray_errors.WorkerCrashedError(), id="WorkerCrashedError"),
    pytest.param(ray_errors.NodeDiedError("node gone"), id="NodeDiedError"),
]


@pytest.mark.parametrize("exc", UNAVAILABLE_CASES)
def test_dead_or_unreachable_replica_is_engine_unavailable_naming_the_ray_type(exc):
    out = _translate(exc)
    assert type(out) is EngineUnavailable
    assert out.message == f"replica unavailable ({type(exc).__name__})"


@pytest.mark.parametrize("exc", [
    pytest.param(ray_errors.GetTimeoutError("get timed out"), id="GetTimeoutError"),
    pytest.param(ray_errors.RaySystemError("raylet gone"), id="RaySystemError"),
    pytest.param(ray_errors.ObjectStoreFullError("plasma full"), id="ObjectStoreFullError"),
    pytest.param(ray_errors.TaskCancelledError(error_message="cancelled"), id="TaskCancelledError"),
])
def test_any_other_ray_error_is_engine_unavailable_with_type_and_message(exc):
    out = _translate(exc)
    assert type(out) is EngineUnavailable
    assert out.message == f"{type(exc).__name__}: {exc}"
    assert type(exc).__name__ in out.message


@pytest.mark.parametrize("cause", [
    EngineUnavailable("engine shutting down"),
    EngineRequestError("bad sampling params", param="top_p"),
    ContextLengthExceeded("prompt too long", limit=64),
    EngineError("vLLM crashed"),
], ids=lambda e: type(e).__name__)
def test_engine_error_raised_inside_the_replica_keeps_its_class_and_data(cause):
    out = _translate(task_error(cause))
    assert isinstance(out, type(cause))
    # The subclass is kept exactly: a request error must not become retryable, and an
    # unavailable engine must not lose its retryability.
    assert isinstance(out, EngineUnavailable) == isinstance(cause, EngineUnavailable)
    assert isinstance(out, EngineRequestError) == isinstance(cause, EngineRequestError)
    assert out.message == cause.message and out.data == cause.data


def test_engine_error_already_raised_as_ray_dual_instance_is_returned_as_is():
    # What a handle call actually raises: RayTaskError(ContextLengthExceeded), both classes.
    dual = task_error(ContextLengthExceeded("prompt too long", limit=64)).as_instanceof_cause()
    assert isinstance(dual, ray_errors.RayTaskError) and isinstance(dual, ContextLengthExceeded)
    out = _translate(dual)
    assert out is dual
    assert not isinstance(out, EngineUnavailable)


@pytest.mark.parametrize("cause", [ValueError("bad token id"), RuntimeError("CUDA error: out of memory")],
                         ids=lambda e: type(e).__name__)
def test_non_engine_exception_inside_the_replica_is_a_plain_engine_error(cause):
    for exc in (task_error(cause), task_error(cause).as_instanceof_cause()):
        out = _translate(exc)
        assert type(out) is EngineError  # 500, not retried: not EngineUnavailable
        assert out.message == f"{type(cause).__name__}: {cause}"


@pytest.mark.parametrize("exc", [
    ValueError("not ray"),
    TimeoutError(),
    EngineUnavailable("raised locally"),
    EngineRequestError("raised locally"),
], ids=lambda e: type(e).__name__)
def test_non_ray_exceptions_pass_through_unchanged(exc):
    assert _translate(exc) is exc


# Serve's own exceptions derive from RayServeException(Exception), not RayError: they
# need their own place in the mapping to become retryable.
@pytest.mark.parametrize("exc", [
    pytest.param(serve_errors.BackPressureError(num_queued_requests=10, max_queued_requests=10), id="BackPressureError"),
    pytest.param(serve_errors.ReplicaUnavailableError("replica-1"), id="ReplicaUnavailableError"),
])
def test_serve_unavailability_errors_become_engine_unavailable(exc):
    assert isinstance(_translate(exc), EngineUnavailable)


# -- HandleEngine: every call site translates ------------------------------------------------

@pytest.mark.parametrize("method, call", [
    ("generate", lambda e: e.generate(REQUEST)),
    ("load", lambda e: e.load()),
    ("probe_adapter", lambda e: e.probe_adapter(REQUEST)),
])
async def test_each_handle_call_turns_a_dead_replica_into_engine_unavailable(method, call):
    died = ray_errors.ActorDiedError()
    handle = FakeHandle(outcome=died)
    engine = HandleEngine(handle)
    with pytest.raises(EngineUnavailable) as caught:
        await call(engine)
    assert caught.value.__cause__ is died  # the Ray error stays reachable for logs
    assert len(getattr(handle, method).calls) == 1


async def test_handle_call_keeps_an_engine_request_error_from_the_replica():
    handle = FakeHandle(outcome=task_error(ContextLengthExceeded("prompt too long", limit=64)))
    with pytest.raises(ContextLengthExceeded) as caught:
        await HandleEngine(handle).generate(REQUEST)
    assert not isinstance(caught.value, EngineUnavailable)
    assert caught.value.data == {"limit": 64}


async def test_handle_call_success_returns_the_result_and_forwards_the_request():
    handle = FakeHandle(outcome="result")
    assert await HandleEngine(handle).generate(REQUEST) == "result"
    assert handle.generate.calls == [(REQUEST,)]
    assert handle.options_seen == [{"stream": True}]


async def test_handle_call_lets_a_non_ray_error_through():
    boom = ValueError("local bug")
    with pytest.raises(ValueError) as caught:
        await HandleEngine(FakeHandle(outcome=boom)).generate(REQUEST)
    assert caught.value is boom


async def test_stream_translates_a_replica_death_mid_stream_and_cancels():
    stream = FakeStream(["c1", "c2"], ray_errors.ActorDiedError())
    engine = HandleEngine(FakeHandle(stream=stream))
    got = []
    with pytest.raises(EngineUnavailable):
        async for chunk in engine.stream(REQUEST):
            got.append(chunk)
    assert got == ["c1", "c2"]  # what arrived before the failure was delivered
    assert stream.cancelled


async def test_stream_keeps_an_engine_error_raised_in_the_replica():
    stream = FakeStream([], task_error(EngineRequestError("bad stop sequence")))
    with pytest.raises(EngineRequestError) as caught:
        async for _ in HandleEngine(FakeHandle(stream=stream)).stream(REQUEST):
            pass
    assert not isinstance(caught.value, EngineUnavailable)


async def test_stream_consumer_stopping_early_cancels_the_replica_stream():
    stream = FakeStream(["c1", "c2", "c3"], None)
    gen = HandleEngine(FakeHandle(stream=stream)).stream(REQUEST)
    assert await gen.__anext__() == "c1"
    assert not stream.cancelled
    await gen.aclose()  # client gone
    assert stream.cancelled


async def test_stream_to_the_end_yields_everything_and_needs_no_cancel():
    stream = FakeStream(["c1", "c2"], None)
    assert [c async for c in HandleEngine(FakeHandle(stream=stream)).stream(REQUEST)] == ["c1", "c2"]
    assert not stream.cancelled  # the replica's generator is done: no extra call into Ray
