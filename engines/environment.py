"""Secrets from the process environment, by the name of their variable.

An API key travels in no config and no argument: only its variable's name does (a remote
tier's `api_key_env`, the `router` commands' key options). Besides `deployments.settings`,
which reads the `GATEWAY_*` settings tree, this is the product's one reader of the
environment.
"""

from __future__ import annotations

import os


def env_secret(name: str) -> str | None:
    """The value of the variable `name`; None when it is unset or empty."""
    return os.environ.get(name) or None
