"""What can go wrong with an adapter, before it can hurt traffic.

    AdapterError
     ├── AdapterNotFound       unknown domain or version
     │    └── AdapterNotServed  a request named one the live directory does not serve
     ├── InvalidAdapter        missing, corrupt or incomplete adapter directory
     ├── IncompatibleAdapter   trained on another base model, or rank above the engine's maximum
     ├── EvaluationFailed      worse than the base model on its own held-out data
     ├── ProbeFailed           the small tier did not load it on trial (refused it, or unreachable)
     ├── RollbackUnavailable   no earlier version inside the retention window
     └── StaleRollback         the version a rollback was meant to undo is no longer active

The last two are also the versioned-state kit's `RollbackUnavailable` and `StaleChange`
(`model_files/versioned.py`), as the router registry's are.
Every operation that raises leaves the registry as it was: the active version stays.
"""

from __future__ import annotations

from engines.errors import EngineError
from model_files import versioned


class AdapterError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AdapterNotFound(AdapterError):
    pass


class AdapterNotServed(AdapterNotFound):
    """A request's `model` (`small:<domain>[@version]`) names an adapter the live directory
    does not serve; `param` is the request field at fault (the edge answers 404)."""

    def __init__(self, message: str, param: str = "model") -> None:
        super().__init__(message)
        self.param = param


class InvalidAdapter(AdapterError):
    pass


class IncompatibleAdapter(AdapterError):
    pass


class EvaluationFailed(AdapterError):
    pass


class ProbeFailed(AdapterError):
    """The trial load on one small-tier replica failed; `cause` tells a refusal of the
    weights (the caller's fault) from an engine that is dead or out of reach."""

    def __init__(self, adapter: str, cause: EngineError) -> None:
        super().__init__(cause.message)
        self.adapter = adapter
        self.cause = cause


# The kit's class first: its __init__ takes the data (expected, actual) and passes the
# message on to AdapterError's.
class RollbackUnavailable(versioned.RollbackUnavailable, AdapterError):
    pass


class StaleRollback(versioned.StaleChange, AdapterError):
    """Another writer changed the active version after the caller judged it."""
