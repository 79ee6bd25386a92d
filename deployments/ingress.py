"""The ingress deployment: serves the gateway's Starlette app over Ray Serve HTTP."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Mapping, Sequence

from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.types import ASGIApp

from adapters.config import AdapterSettings
from adapters.directory import AdapterDirectory
from adapters.manifest import SELECTOR_MAX_TOKENS
from adapters.registry import AdapterRegistry
from deployments.adapter_fleet import ServeAdapterFleet
from deployments.direct_tier import DirectTier
from deployments.handle_client import HandleEngine
from deployments.load_board import BoardAddress, BoardClient
from engines.openai_remote import RemoteSpec
from engines.protocol import Engine
from engines.types import Tier
from gateway.assembly import AdapterParts, Edge, Features, Routing, ShadowParts, SpendParts, Tiers, build_gateway
from support.config import SupportSettings
from support.wiring import SupportParts
from gateway.catalog import TierSpec
from retrieval.grounding import Grounder
from retrieval.usage_journal import usage_journal
from gateway.metrics import GatewayMetrics
from deployments.reranker import HandleReranker
from retrieval.config import RetrievalSettings
from retrieval.knowledge import open_first_stage
from deployments.limit_board import LimitBoardAddress
from gateway.access import Access
from gateway.auth import Authenticator, LocalRateLimiter, RateLimiter
from gateway.shared_limits import SYNC_INTERVAL_S, SyncedRateLimiter
from background.failures import CountFailure, uncounted
from background.periodic import Poll
from gateway.keys import KeyStore
from gateway.settings import AdminSettings, AuthSettings, LimitSettings
from deployments.settings import RouterSettings, ShadowSettings
from text.embedding import MiniLMEmbedder
from flags.faithfulness import EmbeddingSupport
from shadow.agreement import EmbeddingAgreement
from shadow.journal import Journal
from spend.config import SpendSettings
from spend.ledger import SpendLedger
from gate.answerability import AnswerabilityGate
from gate.config import GateSettings
from gate.loading import load_gate
from router.loading import EmbedderCache, LoadedRouter, load_router
from router.model import EmbedderSpec
from router.registry import RouterRegistry, step_registries

logger = logging.getLogger(__name__)


def load_routing(
    settings: RouterSettings, embedders: EmbedderCache | None = None, order: Sequence[Tier] = ("small", "large"),
) -> Routing:
    """The learned router this replica starts with, and the registry whose active version
    replaces it live; None scorer (baseline routing) when no model is there.

    A model that exists but does not match this code's feature schema raises: a silent
    misroute is worse than a failed start.
    """
    embedders = embedders if embedders is not None else EmbedderCache()
    registry = RouterRegistry(settings.registry)
    loader = partial(_load_version, embedders=embedders)
    steps = step_registries(settings.steps_dir, order)  # `order`: the tiers, cheapest first
    live = dict(registry=registry, loader=loader, poll_s=settings.poll_s, steps=steps)
    if not (settings.model_dir / "manifest.json").exists():
        if settings.required:
            raise FileNotFoundError(f"no router model at {settings.model_dir}")
        logger.warning("no router model at %s: model=auto uses the baseline rule", settings.model_dir)
        return Routing(**live)  # type: ignore[arg-type]
    loaded = load_router(settings.model_dir, None, embedders)
    logger.info("router model %s loaded from %s", loaded.version, settings.model_dir)
    return Routing(loaded.score, loaded.training_scores, loaded.version, **live)  # type: ignore[arg-type]


def _load_version(path: Path, version: str, embedders: EmbedderCache) -> LoadedRouter:
    return load_router(path, version, embedders)


def load_grounder(
    settings: RetrievalSettings | None, reranker: DeploymentHandle | None, metrics: GatewayMetrics,
    encoder: MiniLMEmbedder | None,
) -> Grounder | None:
    """The knowledge base's first stage in this replica, the reranker behind its handle."""
    if settings is None or reranker is None or encoder is None or not settings.enabled:
        return None
    first_stage = open_first_stage(settings.kb, encoder, settings.title_weight)
    logger.info("knowledge base %s: %d chunks", settings.kb, len(first_stage.chunks))
    # Which documents serve grounded queries (the KB-rot review): `retrieval review`.
    usage = usage_journal(settings.rot, metrics.grounding, metrics.background_failures_of)
    return Grounder(first_stage, HandleReranker(reranker), metrics.grounding, usage=usage)


@dataclass(frozen=True)
class IngressHandles:
    """The deployments the ingress talks to."""

    small: DeploymentHandle | None  # None: a remote tier called directly (IngressParts.direct)
    large: DeploymentHandle | None
    load_board: BoardAddress
    limit_board: LimitBoardAddress | None = None  # None: rate limits per replica
    reranker: DeploymentHandle | None = None  # None: no grounding
    extra: Mapping[Tier, DeploymentHandle | None] = field(default_factory=dict)  # tiers above large

    def of(self, tier: Tier) -> DeploymentHandle | None:
        if tier == "small":
            return self.small
        if tier == "large":
            return self.large
        return self.extra[tier]


@dataclass(frozen=True)
class IngressParts:
    """The settings sections the ingress builds its gateway from."""

    tiers: Mapping[Tier, TierSpec]  # cheapest first
    limits: LimitSettings
    router: RouterSettings
    adapters: AdapterSettings = field(default_factory=AdapterSettings)
    registry: AdapterRegistry | None = None  # None: the small tier serves no adapters
    admin: AdminSettings = field(default_factory=AdminSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    access: Access = field(default_factory=Access)  # decided by the app builder, once; default closed
    shadow: ShadowSettings | None = None
    retrieval: RetrievalSettings | None = None
    direct: Mapping[Tier, RemoteSpec] = field(default_factory=dict)  # remote tiers with no replica
    support: SupportSettings | None = None  # None: no support controls (gate, rollout modes)
    gate: GateSettings | None = None  # the answerability classifier; None: messages are not gated
    spend: SpendSettings | None = None  # None: spend counted in memory only (no ledger)


@serve.deployment(max_ongoing_requests=1024, ray_actor_options={"num_cpus": 0})
@serve.ingress()
class Ingress:
    def __init__(self, handles: IngressHandles, parts: IngressParts) -> None:
        self._configured = False
        # The router's versions, the gate and a static adapter selector share one static MiniLM.
        embedders = EmbedderCache()
        routing = load_routing(parts.router, embedders, list(parts.tiers))
        gate = _load_gate(parts.gate, embedders)
        metrics = GatewayMetrics()
        replica = serve.get_replica_context().replica_id.unique_id
        board = handles.load_board.connect()
        self._direct = {
            tier: DirectTier(recipe, tier, board, replica, metrics.background_failures_of)
            for tier, recipe in parts.direct.items()
        }
        engines = {tier: self._engine(tier, handles) for tier in parts.tiers}  # cheapest first
        # One MiniLM copy for the shadow agreement, the knowledge base's dense stage and the
        # answer flags' faithfulness check.
        minilm = MiniLMEmbedder(max_tokens=256) if parts.shadow or parts.retrieval else None
        shadow = None
        if parts.shadow is not None and minilm is not None:
            shadow = ShadowParts(
                Journal(parts.shadow.store), EmbeddingAgreement(minilm), flag_support=EmbeddingSupport(minilm)
            )
        # Ray Serve's proxy already echoes x-request-id (and passes it in): don't add a second.
        auth, limits_sync = _authenticator(
            parts.auth, parts.access, handles.limit_board, replica, metrics.background_failures_of
        )
        edge = Edge(auth=auth, admin=parts.admin, echo_request_id=False, metrics=metrics, polls=limits_sync)
        features = Features(
            adapters=_adapter_parts(parts, engines["small"], board, embedders), shadow=shadow,
            grounder=load_grounder(parts.retrieval, handles.reranker, metrics, minilm),
            support=_support_parts(parts.support), gate=gate,
            spend=SpendParts(SpendLedger(parts.spend.ledger), parts.spend) if parts.spend is not None else None,
        )
        self._gateway = build_gateway(
            Tiers(engines, parts.tiers, loads=board.snapshot), parts.limits,
            edge=edge, routing=routing, features=features,
        )

    def _engine(self, tier: Tier, handles: IngressHandles) -> Engine:
        if tier in self._direct:
            return self._direct[tier].engine
        handle = handles.of(tier)
        assert handle is not None, "a tier without a deployment is a direct remote tier"
        return HandleEngine(handle)

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        self._gateway.reconfigure(user_config, strict=not self._configured)
        self._configured = True

    def __serve_build_asgi_app__(self) -> ASGIApp:
        return self._gateway.app

    def __del__(self) -> None:
        for direct in getattr(self, "_direct", {}).values():
            direct.close()


def _support_parts(settings: SupportSettings | None) -> SupportParts | None:
    if settings is None:
        return None
    return SupportParts(settings.rollout_state, settings.poll_s, settings.review_s)


def _load_gate(settings: GateSettings | None, embedders: EmbedderCache) -> AnswerabilityGate | None:
    if settings is None:
        return None
    return load_gate(settings, lambda spec: embedders.get(EmbedderSpec(kind=spec.kind, max_tokens=spec.max_tokens)))


def _authenticator(
    auth: AuthSettings, access: Access, limit_board: LimitBoardAddress | None, replica: str,
    count_failure: CountFailure = uncounted,
) -> tuple[Authenticator, tuple[Poll, ...]]:
    """The authenticator and its background step (the rate-limit sync, where there is one)."""
    # Closed, the store must be there (a missing file is a misconfiguration, never an empty
    # store); open, a store that is there still identifies the keys callers present.
    store = KeyStore(auth.keys_db, create=False) if not access.open or auth.keys_db.is_file() else None
    limiter: RateLimiter = LocalRateLimiter()
    polls: tuple[Poll, ...] = ()
    if limit_board is not None and store is not None:  # no store, no keys: nothing is ever limited
        synced = SyncedRateLimiter(limit_board.connect(replica), count_failure=count_failure)
        limiter, polls = synced, (Poll(synced.sync, SYNC_INTERVAL_S, "rate-limit-sync"),)
    authenticator = Authenticator(
        store, limiter, auth.cache_ttl_s, access=access, default_max_concurrent=auth.default_max_concurrent,
        detail_headers=auth.detail_headers,
    )
    return authenticator, polls


def _adapter_parts(
    parts: IngressParts, small: Engine, board: BoardClient, embedders: EmbedderCache
) -> AdapterParts | None:
    if parts.registry is None:
        return None
    # A tier serving adapters always has replicas (settings refuse openai.direct with enable_lora).
    assert isinstance(small, HandleEngine), "adapters are served by a tier deployment"
    config = parts.adapters
    # From the shared cache: a static selector embeds a request's words once with the router.
    spec = EmbedderSpec(kind=config.selector_embedder, max_tokens=SELECTOR_MAX_TOKENS)
    embedder = embedders.get(spec) if config.auto_select else None
    directory = AdapterDirectory(parts.registry, embedder, config.selector_embedder, config.min_similarity)
    return AdapterParts(directory, ServeAdapterFleet(small, board), config.auto_select, config.poll_interval_s)
