"""The HTTP edge's own settings sections: input limits, the admin API, API keys. The
settings tree that holds them, and reads the environment, is deployments/settings.py."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from model_files.cache import DEFAULT_CACHE_DIR


class LimitSettings(BaseModel):
    """Input limits; the start-up values, replaceable live through `user_config.limits`."""

    model_config = ConfigDict(extra="forbid")

    max_body_bytes: int = Field(1_000_000, ge=1024, description="Largest request body accepted (413)")
    max_messages: int = Field(256, ge=1, description="Most chat messages in one request (400)")
    max_tokens: int = Field(4096, ge=1, description="Cap on max_tokens / max_completion_tokens (400)")


class AdminSettings(BaseModel):
    api_key: SecretStr | None = Field(
        None, description="Bearer key of the admin API (/admin/*); None = admin API off"
    )
    converge_timeout_s: float = Field(
        30.0, gt=0, description="How long an admin change waits for every replica to apply it"
    )


class AuthSettings(BaseModel):
    keys_db: Path = Field(
        DEFAULT_CACHE_DIR / "keys.sqlite",
        description="API key store (`gateway keys create`); with no active key the API is open",
    )
    cache_ttl_s: float = Field(5.0, gt=0, description="Key lookups cached this long (revocation delay)")
