"""A fake agreement scorer for shadow stores in API tests: every pair of answers agrees."""

from __future__ import annotations


class Same:
    def score(self, a: str, b: str) -> float:
        return 1.0
