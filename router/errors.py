"""What the router's version registry refuses, and why (mapped to HTTP at the edge).

    RouterVersionError
     ├── InvalidVersion        not a version name: would name a path outside the registry (400)
     ├── VersionNotFound       no such version (404)
     ├── VersionRefused        a model this gateway cannot serve (400)
     ├── RollbackUnavailable   also the versioned-state kit's RollbackUnavailable (409)
     └── StaleChange           also the versioned-state kit's StaleChange (409)
"""

from __future__ import annotations

from model_files import versioned


class RouterVersionError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidVersion(RouterVersionError):
    """Not a version name (model_files.version_names): refused before any path is built (400)."""


class VersionNotFound(RouterVersionError):
    """No such version in the registry (404)."""


class VersionRefused(RouterVersionError):
    """A model this gateway cannot serve: schema or tiers do not match (400)."""


# The kit's class first: its __init__ takes the data (expected, actual) and passes the
# message on to RouterVersionError's.
class RollbackUnavailable(versioned.RollbackUnavailable, RouterVersionError):
    """Nothing earlier to go back to, or it left the rollback window (409)."""


class StaleChange(versioned.StaleChange, RouterVersionError):
    """The state moved since the caller decided (compare-and-set failed) (409)."""
