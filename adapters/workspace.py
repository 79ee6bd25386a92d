"""The small model the adapters belong to, and the registry opened against it.

Both the app and the `adapters` command open the registry here, from the settings
sections they are handed: this package never reads the settings tree itself.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, Field

from adapters.config import AdapterSettings
from adapters.manifest import fingerprint
from adapters.registry import AdapterRegistry

logger = logging.getLogger(__name__)


class SmallModel(BaseModel):
    """The small tier as its adapters see it."""

    model_dir: str = Field(description="The small model's HF directory (or hub id) the adapters are trained on")
    served_name: str
    max_lora_rank: int = Field(16, ge=1, description="Largest rank the small tier's engine serves")


class AdapterWorkspace(BaseModel):
    """Everything needed to train, register and operate the small tier's adapters."""

    config: AdapterSettings
    small: SmallModel

    def with_registry(self, registry_dir: Path | None) -> "AdapterWorkspace":
        if registry_dir is None:
            return self
        return self.model_copy(update={"config": self.config.model_copy(update={"registry_dir": registry_dir})})

    def open_registry(self) -> AdapterRegistry:
        base = None
        if (Path(self.small.model_dir) / "config.json").exists():
            base = fingerprint(self.small.model_dir, self.small.served_name)
        else:  # a hub id: its shape is checked by vLLM when an adapter loads
            logger.warning(
                "small model %s is not a local directory: adapters' base is not pre-checked", self.small.model_dir
            )
        return AdapterRegistry(
            self.config.registry_dir,
            base=base,
            max_rank=self.small.max_lora_rank,
            retention=timedelta(days=self.config.retention_days),
        )
