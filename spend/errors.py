"""The spend capability's refusals.

    SpendError
    └── BudgetExceeded     a key's hard budget is spent (the edge answers 429 budget_exceeded)
"""

from __future__ import annotations

from datetime import datetime


class SpendError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BudgetExceeded(SpendError):
    def __init__(self, message: str, resets_at: datetime, retry_after_s: float) -> None:
        super().__init__(message)
        self.resets_at = resets_at
        self.retry_after_s = retry_after_s
