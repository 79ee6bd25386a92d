"""The ingress deployment: serves the gateway's Starlette app over Ray Serve HTTP."""

from __future__ import annotations

import logging
from typing import Any, Mapping

from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.types import ASGIApp

from adapters.config import AdapterSettings
from adapters.registry import AdapterRegistry
from deployments.adapter_fleet import ServeAdapterFleet
from deployments.handle_client import HandleEngine
from deployments.load_board import BoardLoadSource
from gateway.adapters import AdapterDirectory
from gateway.assembly import build_gateway
from gateway.catalog import TierSpec
from gateway.grounding import Grounder
from gateway.metrics import GatewayMetrics
from deployments.reranker import HandleReranker
from retrieval.config import RetrievalSettings
from retrieval.knowledge import open_first_stage
from deployments.limit_board import BoardRateLimiter
from gateway.auth import Authenticator, LocalRateLimiter
from gateway.keys import KeyStore
from gateway.settings import AdminSettings, AuthSettings, LimitSettings, RouterSettings, ShadowSettings
from router.embedding import MiniLMEmbedder, build_embedder
from shadow.agreement import EmbeddingAgreement
from shadow.store import ShadowStore
from router.learned import ScoreFn
from router.model import RouterModel, Scorer

logger = logging.getLogger(__name__)


def load_scorer(settings: RouterSettings) -> tuple[ScoreFn | None, list[float] | None]:
    """The learned router's scorer, or None (baseline routing) when no model is there.

    A model that exists but does not match this code's feature schema raises: a silent
    misroute is worse than a failed start.
    """
    if not (settings.model_dir / "manifest.json").exists():
        if settings.required:
            raise FileNotFoundError(f"no router model at {settings.model_dir}")
        logger.warning("no router model at %s: model=auto uses the baseline rule", settings.model_dir)
        return None, None
    model = RouterModel.load(settings.model_dir)
    spec = model.manifest.embedder
    scorer = Scorer(model, build_embedder(spec.kind, spec.max_tokens))
    logger.info("router model %s loaded (schema %s)", model.manifest.version, model.manifest.schema_hash)
    return scorer.score, model.manifest.metrics.get("training_scores_quantiles")


def load_grounder(
    settings: RetrievalSettings | None, reranker: DeploymentHandle | None, metrics: GatewayMetrics,
    encoder: MiniLMEmbedder | None,
) -> Grounder | None:
    """The knowledge base's first stage in this replica, the reranker behind its handle."""
    if settings is None or reranker is None or encoder is None or not settings.enabled:
        return None
    first_stage = open_first_stage(settings.kb, encoder, settings.title_weight)
    logger.info("knowledge base %s: %d chunks", settings.kb, len(first_stage.chunks))
    return Grounder(first_stage, HandleReranker(reranker), metrics)


@serve.deployment(max_ongoing_requests=1024, ray_actor_options={"num_cpus": 0})
@serve.ingress()
class Ingress:
    def __init__(
        self,
        small: DeploymentHandle,
        large: DeploymentHandle,
        board: DeploymentHandle,
        tiers: Mapping[str, TierSpec],
        limits: LimitSettings,
        router: RouterSettings,
        registry: AdapterRegistry | None = None,
        adapters: AdapterSettings | None = None,
        admin: AdminSettings | None = None,
        auth: AuthSettings | None = None,
        limit_board: DeploymentHandle | None = None,
        shadow: ShadowSettings | None = None,
        retrieval: RetrievalSettings | None = None,
        reranker: DeploymentHandle | None = None,
    ) -> None:
        self._configured = False
        scorer, training_scores = load_scorer(router)
        engines = {"small": HandleEngine(small), "large": HandleEngine(large)}
        adapters = adapters or AdapterSettings()
        directory = None
        if registry is not None:
            embedder = build_embedder(adapters.selector_embedder, 128) if adapters.auto_select else None
            directory = AdapterDirectory(
                registry, embedder, adapters.selector_embedder, adapters.min_similarity,
                parent=tiers["small"].served_name,
            )
        auth = auth or AuthSettings()
        limiter = BoardRateLimiter(limit_board) if limit_board is not None else LocalRateLimiter()
        authenticator = Authenticator(KeyStore(auth.keys_db), limiter, auth.cache_ttl_s)
        metrics = GatewayMetrics()
        minilm = MiniLMEmbedder(max_tokens=256) if shadow or retrieval else None  # one copy, shared
        grounder = load_grounder(retrieval, reranker, metrics, minilm)
        # Ray Serve's proxy already echoes x-request-id (and passes it in): don't add a second.
        self._gateway = build_gateway(  # type: ignore[arg-type]
            engines, tiers, limits, loads=BoardLoadSource(board), scorer=scorer,
            training_scores=training_scores, echo_request_id=False,
            adapters=directory, fleet=ServeAdapterFleet(engines["small"], board), admin=admin,
            auto_select_adapters=adapters.auto_select, adapter_poll_s=adapters.poll_interval_s,
            auth=authenticator, shadow_store=ShadowStore(shadow.store) if shadow else None,
            agreement=EmbeddingAgreement(minilm) if shadow and minilm else None,
            metrics=metrics, grounder=grounder,
        )

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        self._gateway.reconfigure(user_config, strict=not self._configured)
        self._configured = True

    def __serve_build_asgi_app__(self) -> ASGIApp:
        return self._gateway.app
