"""The manifest stored beside each adapter version, and its evaluation verdict."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from adapters.errors import InvalidAdapter
from model_files.version_names import RULE, is_version_name

MANIFEST = "manifest.json"
WEIGHTS = "adapter_model.safetensors"
PEFT_CONFIG = "adapter_config.json"


class LossFigures(BaseModel):
    base: float
    adapter: float

    @property
    def relative_change(self) -> float:
        return (self.adapter - self.base) / self.base


class EvalFigures(BaseModel):
    """Held-out answer-token loss of the base model and of base + adapter."""

    domain: LossFigures
    anchors: LossFigures
    anchor_margin: float = Field(description="Largest relative anchor-loss increase allowed")

    @property
    def passed(self) -> bool:
        return self.domain.adapter < self.domain.base and self.anchors.relative_change <= self.anchor_margin

    def verdict(self) -> str:
        if self.domain.adapter >= self.domain.base:
            return (
                f"the adapter does not improve its domain: held-out loss {self.domain.adapter:.4f} "
                f"vs base {self.domain.base:.4f}"
            )
        if self.anchors.relative_change > self.anchor_margin:
            return (
                f"the adapter regresses the stability anchors by {self.anchors.relative_change:+.1%} "
                f"(allowed {self.anchor_margin:+.1%})"
            )
        return "passed"


class BaseFingerprint(BaseModel):
    """Enough of the base model's shape to refuse an adapter trained on another one."""

    name: str
    model_type: str
    hidden_size: int
    num_hidden_layers: int


class Centroid(BaseModel):
    """The domain's mean query embedding, for the embedding-based adapter selector."""

    embedder: str
    vector: list[float]


SELECTOR_EMBEDDERS = ("minilm", "static")  # centroids are stored for each
SELECTOR_MAX_TOKENS = 128  # the selector embeds queries as the centroids were built: truncated here

def check_version(version: str) -> str:
    """A version is a directory name under the registry (model_files.version_names)."""
    if not is_version_name(version):
        raise InvalidAdapter(f"'{version[:80]}' is not a valid adapter version ({RULE})")
    return version


class AdapterManifest(BaseModel):
    version: str = Field(description="<domain>-v<N>-<date>")
    domain: str
    base: BaseFingerprint
    rank: int
    alpha: int
    target_modules: list[str]
    sha256: str = Field(description="sha256 of the adapter weights file")
    created_at: datetime
    eval: EvalFigures | None = None
    forced: bool = Field(False, description="Registered despite failing its evaluation")
    training: dict[str, float | int | str] = Field(default_factory=dict)
    centroids: list[Centroid] = Field(default_factory=list)

    @field_validator("version")
    @classmethod
    def _safe_version(cls, version: str) -> str:
        try:
            return check_version(version)
        except InvalidAdapter as exc:
            raise ValueError(exc.message) from None

    def centroid(self, embedder: str) -> list[float] | None:
        return next((c.vector for c in self.centroids if c.embedder == embedder), None)


def fingerprint(model_dir: str, name: str) -> BaseFingerprint:
    """Read the shape of a local HF model directory (its config.json)."""
    import json
    from pathlib import Path

    config = json.loads((Path(model_dir) / "config.json").read_text())
    text = config.get("text_config", config)  # multimodal configs nest the LM's
    return BaseFingerprint(
        name=name,
        model_type=str(config.get("model_type")),
        hidden_size=int(text["hidden_size"]),
        num_hidden_layers=int(text["num_hidden_layers"]),
    )
