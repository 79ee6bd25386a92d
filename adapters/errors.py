"""What can go wrong with an adapter, before it can hurt traffic.

    AdapterError
     ├── AdapterNotFound       unknown domain or version
     ├── InvalidAdapter        missing, corrupt or incomplete adapter directory
     ├── IncompatibleAdapter   trained on another base model, or rank above the engine's maximum
     ├── EvaluationFailed      worse than the base model on its own held-out data
     ├── RollbackUnavailable   no earlier version inside the retention window
     └── StaleRollback         the version a rollback was meant to undo is no longer active

Every operation that raises leaves the registry as it was: the active version stays.
"""

from __future__ import annotations


class AdapterError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AdapterNotFound(AdapterError):
    pass


class InvalidAdapter(AdapterError):
    pass


class IncompatibleAdapter(AdapterError):
    pass


class EvaluationFailed(AdapterError):
    pass


class RollbackUnavailable(AdapterError):
    pass


class StaleRollback(AdapterError):
    """Another writer changed the active version after the caller judged it."""
