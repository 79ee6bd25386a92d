"""The HTTP edge's own settings sections: input limits, the admin API, API keys. The
settings tree that holds them, and reads the environment, is deployments/settings.py."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from model_files.cache import DEFAULT_CACHE_DIR


class LimitSettings(BaseModel):
    """Input limits; the start-up values, replaceable live through `user_config.limits`."""

    model_config = ConfigDict(extra="forbid")

    max_body_bytes: int = Field(1_000_000, ge=1024, description="Largest request body accepted (413)")
    max_messages: int = Field(256, ge=1, description="Most chat messages in one request (400)")
    max_tokens: int = Field(4096, ge=1, description="Cap on max_tokens / max_completion_tokens (400)")
    max_in_flight: int = Field(
        256, ge=1, description="Most /v1 requests one ingress replica serves at once, streams included; "
        "above it 429 concurrency_limit with Retry-After, before any work"
    )


class AdminSettings(BaseModel):
    api_key: SecretStr | None = Field(
        None, description="Bearer key of the admin API (/admin/*); None = admin API off"
    )
    converge_timeout_s: float = Field(
        30.0, gt=0, description="How long an admin change waits for every replica to apply it"
    )


class AuthSettings(BaseModel):
    """Who may call: API keys, open mode, the hosts the gateway answers to, what callers see.

    Closed by default: every /v1 call needs a key. Open mode (no key needed) is decided once,
    at start-up (`gateway.access.decide_access`), never from the store's contents at run time:
    revoking the last key leaves a closed gateway that refuses every call."""

    model_config = ConfigDict(extra="forbid")

    keys_db: Path = Field(
        DEFAULT_CACHE_DIR / "keys.sqlite",
        description="API key store (`gateway keys create`); serving never creates it",
    )
    cache_ttl_s: float = Field(5.0, gt=0, description="Key lookups cached this long (revocation delay)")
    open: bool | None = Field(
        None, description="true: serve /v1 without keys (on any address: say so on purpose); false: keys "
        "always required; None: open only on a loopback bind while no key was ever created (the first "
        "`make run`), else closed. A closed gateway with no active key refuses to start"
    )
    default_max_concurrent: int | None = Field(
        16, ge=1, description="Requests in flight at once per key per ingress replica, for a key created "
        "without --max-concurrent (429 concurrency_limit above it); None = unlimited"
    )
    allowed_hosts: list[str] | None = Field(
        None, description="Host header values the gateway answers (`*.example.com` for subdomains, `*` for "
        "any; 400 otherwise): stops DNS rebinding. None: on a loopback bind, the loopback names and the "
        "bind host; on any other bind, any host"
    )
    detail_headers: bool = Field(
        False, description="Every caller gets the routing detail headers (scores, thresholds, queue depth, "
        "router version, KB chunk ids); false: only admin keys and the local user of an open loopback gateway"
    )

    @field_validator("open", "default_max_concurrent", mode="before")
    @classmethod
    def _none_from_env(cls, value: object) -> object:
        # An environment variable cannot say None: GATEWAY_AUTH__OPEN=auto (or "", "none") does.
        return None if isinstance(value, str) and value.strip().lower() in ("", "none", "auto") else value
