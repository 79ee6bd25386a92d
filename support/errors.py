"""The support controls' exceptions; the edge maps them to HTTP (`gate_unavailable` is a
400, the rollout's refusals are 409s).

    SupportError
    ├── GateUnavailable      a client asked for the gate (`gate: true`) and none is loaded
    └── GateNotCleared       a promotion to auto whose promotion gate is not cleared

A change decided on a mode that moved meanwhile raises the versioned-state kit's
`model_files.versioned.StaleChange` (`support.rollout_state.StaleRolloutChange`).
"""

from __future__ import annotations


class SupportError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class GateUnavailable(SupportError):
    """Carries the OpenAI error's `param` and `code`, so the edge's answer stays the same."""

    param = "gate"
    code = "gate_unavailable"

    def __init__(
        self, message: str = "gate was requested but this gateway has no answerability classifier loaded.",
    ) -> None:
        super().__init__(message)


class GateNotCleared(SupportError):
    pass
