"""The serving side's one call: the configured gate model with its embedder, or None."""

from __future__ import annotations

import logging
from typing import Callable

from gate.answerability import AnswerabilityGate
from gate.config import GateSettings
from gate.model import EmbedderSpec, GateModel, SchemaMismatch
from text.embedding import Embedder, build_embedder

logger = logging.getLogger(__name__)


def load_gate(
    settings: GateSettings, embedder_for: Callable[[EmbedderSpec], Embedder] | None = None,
) -> AnswerabilityGate | None:
    """`embedder_for`: hands out an embedder the caller already holds for the model's spec
    (the router's static MiniLM is the same kind at the same max_tokens), so an ingress
    keeps one copy. Without a usable model: None (messages go ungated), or the error when
    `settings.required`."""
    try:
        model = GateModel.load(settings.model_dir)
    except (FileNotFoundError, SchemaMismatch) as exc:
        if settings.required:
            raise
        logger.warning("no usable gate model (%s): messages are not gated", exc)
        return None
    spec = model.manifest.embedder
    embedder = embedder_for(spec) if embedder_for is not None else build_embedder(spec.kind, spec.max_tokens)
    logger.info("gate model %s loaded from %s", model.manifest.version, settings.model_dir)
    return AnswerabilityGate(model, embedder)
