"""Gate settings (start-up): where the trained classifier lives. The thresholds and the
hand-off text are live config (`gate.verdict.GateThresholds`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from model_files.cache import DEFAULT_CACHE_DIR

DEFAULT_GATE_MODEL = DEFAULT_CACHE_DIR / "gate" / "default"


class GateSettings(BaseModel):
    model_dir: Path = Field(
        DEFAULT_GATE_MODEL, description="Answerability classifier (`gateway gate train --out`); trained by setup"
    )
    required: bool = Field(
        False, description="Fail start-up without a gate model instead of answering every message"
    )
