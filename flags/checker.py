"""Runs the configured evaluators on one answer; one failing evaluator costs only its
own flags (the others still report), and its failure is returned to be counted."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from flags.config import FlagsConfig
from flags.faithfulness import FaithfulnessEvaluator, SupportScorer
from flags.pii import PiiEvaluator
from flags.promises import PromiseEvaluator
from flags.tone import ToneEvaluator
from flags.types import Answer, Evaluator, Flag

logger = logging.getLogger(__name__)


@dataclass
class Checked:
    flags: list[Flag] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # kinds whose evaluator raised


def evaluators(config: FlagsConfig, support: SupportScorer | None) -> list[Evaluator]:
    """The evaluators `config` turns on; faithfulness needs a support scorer."""
    chosen: list[Evaluator] = []
    if config.promise.enabled:
        chosen.append(PromiseEvaluator(config.promise))
    if config.tone.enabled:
        chosen.append(ToneEvaluator(config.tone))
    if config.pii.enabled:
        chosen.append(PiiEvaluator(config.pii))
    if config.faithfulness.enabled and support is not None:
        chosen.append(FaithfulnessEvaluator(support, config.faithfulness))
    return chosen


def check(answer: Answer, chosen: list[Evaluator]) -> Checked:
    checked = Checked()
    for evaluator in chosen:
        try:
            checked.flags += evaluator.evaluate(answer)
        except Exception:  # one broken evaluator must not hide the others' flags
            logger.exception("%s evaluator failed on request %s", evaluator.kind, answer.request_id)
            checked.failed.append(evaluator.kind)
    return checked
