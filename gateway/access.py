"""Open or closed: decided once, at start-up, from the settings, the bind address and the
key store; never again from the store's contents while serving.

    auth.open true                       open (no key needed), on any bind: said on purpose
    auth.open None, loopback bind,       open to the machine's own user: the first `make run`
      no key ever created
    otherwise                            closed: every /v1 call needs an active key; with no
                                         active key the gateway refuses to start (AccessRefused)

A gateway that was closed stays closed: revoking the last key refuses every call (401), it
does not open the API. An anonymous caller of an open gateway bound to loopback is the
machine's own user and sees what an admin sees (detail headers, /metrics, client switches);
an anonymous caller of an open gateway on any other bind sees what a plain key sees.
"""

from __future__ import annotations

import ipaddress
import logging

from pydantic import BaseModel

from gateway.settings import AuthSettings

logger = logging.getLogger(__name__)

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class Access(BaseModel):
    """The decision: `open` no key needed on /v1; `local` the HTTP bind is loopback only."""

    model_config = {"frozen": True}

    open: bool = False
    local: bool = False
    # Host header values answered (trusted-host check); None: any.
    allowed_hosts: tuple[str, ...] | None = None

    @property
    def trusts_anonymous(self) -> bool:
        """An anonymous caller is the machine's own user (open on loopback)."""
        return self.open and self.local


# In-process (API tests, tools embedding the app): open to the local user, no host check.
# The serving path always decides from its settings (`decide_access`).
IN_PROCESS = Access(open=True, local=True)


class KeyCensus(BaseModel):
    """What the key store holds, read without creating it: `exists` false = no file."""

    exists: bool = False
    total: int = 0  # keys ever created, revoked included
    active: int = 0


class AccessRefused(RuntimeError):
    """The gateway must not start as configured; the message names the setting to change."""


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def decide_access(auth: AuthSettings, bind_host: str | None, keys: KeyCensus) -> Access:
    """Open or closed for this start; raises AccessRefused for a gateway nobody could call."""
    local = is_loopback(bind_host)
    hosts = _allowed_hosts(auth.allowed_hosts, bind_host, local)
    if auth.open is True:
        _log_open(bind_host, local, "auth.open is true")
        return Access(open=True, local=local, allowed_hosts=hosts)
    if auth.open is None and local and keys.total == 0:
        _log_open(bind_host, local, f"no API key was ever created in {auth.keys_db}")
        return Access(open=True, local=True, allowed_hosts=hosts)
    if keys.active == 0:
        raise AccessRefused(_refusal(auth, bind_host, local, keys))
    return Access(open=False, local=local, allowed_hosts=hosts)


def _allowed_hosts(configured: list[str] | None, bind_host: str | None, local: bool) -> tuple[str, ...] | None:
    if configured is not None:
        return None if "*" in configured else tuple(h.lower() for h in configured)
    if not local:
        return None  # a public bind is reached by names only the operator knows
    names = {*LOOPBACK_NAMES, (bind_host or "").strip("[]").lower()} - {""}
    return tuple(sorted(names))


def _log_open(bind_host: str | None, local: bool, why: str) -> None:
    if local:
        logger.warning(
            "API OPEN on %s (%s): no key needed, anonymous callers are this machine's user. Create a key "
            "(`gateway keys create --name NAME`) and restart to close it.", bind_host, why,
        )
    else:
        logger.warning("API OPEN on %s (%s): anyone who reaches this address can call /v1.", bind_host, why)


def _refusal(auth: AuthSettings, bind_host: str | None, local: bool, keys: KeyCensus) -> str:
    if not keys.exists:
        state = f"there is no key store at {auth.keys_db}"
    elif keys.total:
        state = f"every key in {auth.keys_db} is revoked"
    else:
        state = f"the key store {auth.keys_db} holds no key"
    if auth.open is False:
        why = "auth.open is false"
    elif local:
        why = "keys were created before"
    else:
        why = f"the gateway binds {bind_host or 'an unknown address'}, not loopback"
    return (
        f"Refusing to start: {state} and {why}, so every call would be refused. Create a key with "
        "`gateway keys create --name NAME` (--admin for the admin API), or serve without keys on purpose "
        "with GATEWAY_AUTH__OPEN=true (settings auth.open)."
    )
