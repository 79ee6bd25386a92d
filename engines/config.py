"""Settings sections of the engines that are not vLLM: a remote endpoint, and the mock.

`deployments.settings` nests them under a tier (`GATEWAY_LARGE__OPENAI__BASE_URL`,
`GATEWAY_LARGE__MOCK__TTFT_S`); they live here, beside the engines that read them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engines.capabilities import Capability

# What a variable name may look like; anything else (say, a key pasted here) is refused.
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class RemoteTierSettings(BaseModel):
    """A tier served by an OpenAI-compatible endpoint elsewhere (`kind=openai`)."""

    # A key pasted into `api_key_env` by mistake must not be echoed by the validation error.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    base_url: str = Field(
        description="The endpoint's OpenAI API root, e.g. http://vllm-large:8000/v1 or https://api.openai.com/v1"
    )
    api_key_env: str | None = Field(
        None, pattern=ENV_NAME, description="Name of the environment variable holding the upstream's API "
        "key, read by each replica at start; the key itself is never configured. None = no key sent"
    )
    upstream_model: str | None = Field(None, description="Model name sent upstream; None = the tier's served_name")
    timeout_s: float = Field(
        300.0, gt=0, description="Longest wait for the upstream's next bytes (the first token included)"
    )
    connect_timeout_s: float = Field(5.0, gt=0, description="Longest wait for a new connection")
    max_connections: int = Field(256, ge=1, description="Pooled connections of one replica to the upstream")
    max_keepalive_connections: int = Field(
        64, ge=0, description="No longer applies (a warning if set): idle connections close after their keep-alive "
        "expiry, 5 s, in the aiohttp pool the remote tier uses",
    )
    metrics_url: str | None = Field(
        None, description="The upstream vLLM's Prometheus /metrics: its running and waiting requests become "
        "the tier's load. None = the load is this replica's in-flight count"
    )
    metrics_interval_s: float = Field(0.5, gt=0, description="How often metrics_url is scraped")
    metrics_stale_s: float = Field(
        3.0, gt=0, description="A scrape older than this is ignored: the load falls back to in-flight counts"
    )
    adapter_models: dict[str, str] = Field(
        default_factory=dict, description="Adapter domain (or version) -> the upstream's model name serving it "
        "(a vLLM LoRA module); an adapter not listed is asked for by its version name"
    )
    direct: bool | None = Field(
        None, description="Call the endpoint straight from each ingress replica, with no engine replica of "
        "its own (one Ray hop less). None = direct unless the tier serves adapters, whose sync needs one replica "
        "per tier; true with adapters is refused"
    )
    tokenizer: str | None = Field(
        None, description="HF tokenizer (directory or hub id) of the upstream model: exact token counts when the "
        "upstream sends no usage, and context-length checks before sending. None = counts estimated and marked, "
        "the upstream's own 400 for an overlong prompt"
    )
    capabilities: list[Capability] | None = Field(
        None, description="What the upstream honours of tools, json_schema, n and logprobs; a request "
        "needing one not listed is refused at the gateway (400) instead of sent. None = all four"
    )

    @field_validator("base_url", "metrics_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") if value is not None else None


class MockTierSettings(BaseModel):
    """A synthetic engine for load-testing the gateway itself (`kind=mock`): no model."""

    model_config = ConfigDict(extra="forbid")

    ttft_s: float = Field(0.05, ge=0, description="Time to first token, from when a request starts running")
    itl_s: float = Field(0.01, ge=0, description="Time between tokens")
    output_tokens: int = Field(32, ge=1, description="Tokens per answer (fewer when max_tokens asks for fewer)")
    max_concurrency: int = Field(
        32, ge=1, description="Requests generating at once; the rest wait (vLLM's max_num_seqs)"
    )
