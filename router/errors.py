"""What the router's version registry refuses, and why (mapped to HTTP at the edge)."""

from __future__ import annotations


class RouterVersionError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class VersionNotFound(RouterVersionError):
    """No such version in the registry (404)."""


class VersionRefused(RouterVersionError):
    """A model this gateway cannot serve: schema or tiers do not match (400)."""


class RollbackUnavailable(RouterVersionError):
    """Nothing earlier to go back to, or it left the rollback window (409)."""


class StaleChange(RouterVersionError):
    """The state moved since the caller decided (compare-and-set failed) (409)."""
