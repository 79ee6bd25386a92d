"""A capability's exception becomes its OpenAI error in one place: `gateway.errors.translated`."""

from __future__ import annotations

import pytest

from adapters.errors import (
    AdapterNotFound,
    AdapterNotServed,
    EvaluationFailed,
    IncompatibleAdapter,
    InvalidAdapter,
    ProbeFailed,
)
from adapters.errors import RollbackUnavailable as AdapterRollbackUnavailable
from engines.errors import EngineError, EngineRequestError, EngineUnavailable
from gateway.errors import translated
from model_files.versioned import StaleChange as KitStaleChange
from router.errors import RollbackUnavailable, StaleChange, VersionNotFound, VersionRefused
from support.errors import GateNotCleared, GateUnavailable

STALE = {"expected": 1, "actual": 2}


@pytest.mark.parametrize(("exc", "status", "code", "param"), [
    (AdapterNotServed("no active adapter"), 404, "adapter_not_found", "model"),
    (AdapterNotFound("no such version"), 404, "adapter_not_found", None),
    (InvalidAdapter("no manifest"), 400, "invalid_adapter", "path"),
    (IncompatibleAdapter("other base"), 400, "incompatible_adapter", "path"),
    (EvaluationFailed("worse"), 400, "evaluation_failed", "path"),
    (AdapterRollbackUnavailable("nothing earlier"), 409, "rollback_unavailable", None),
    (ProbeFailed("a-v1", EngineRequestError("bad rank")), 400, "invalid_adapter", "path"),
    (ProbeFailed("a-v1", EngineUnavailable("dead")), 503, "tier_unavailable", None),
    (ProbeFailed("a-v1", EngineError("boom")), 500, "engine_error", None),
    (VersionNotFound("no v9"), 404, "not_found", None),
    (VersionRefused("other tiers"), 400, None, "path"),
    (RollbackUnavailable("nothing earlier"), 409, "conflict", None),
    (StaleChange("moved", **STALE), 409, "conflict", None),
    (GateUnavailable(), 400, "gate_unavailable", "gate"),
    (GateNotCleared("not cleared"), 409, "gate_not_cleared", None),
    (KitStaleChange("rollout moved", **STALE), 409, "conflict", None),
], ids=lambda v: type(v).__name__ if isinstance(v, Exception) else None)
def test_capability_errors_answer_as(exc, status, code, param):
    error = translated(exc)
    assert error is not None
    assert (error.status, error.code, error.param) == (status, code, param)


def test_messages_are_kept_and_a_probe_names_the_adapter():
    assert translated(VersionNotFound("no v9")).message == "no v9"  # type: ignore[union-attr]
    refused = translated(ProbeFailed("a-v1", EngineRequestError("bad rank")))
    assert refused is not None and refused.message == "The small tier refused adapter 'a-v1': bad rank"


@pytest.mark.parametrize("exc", [ValueError("blank category"), RuntimeError("bug"), KeyError("x")])
def test_anything_else_is_not_translated(exc):
    assert translated(exc) is None
