"""The configured evaluators run together: the config turns each on or off, and one that
raises costs only its own flags."""

from __future__ import annotations

from flags.checker import check, evaluators
from flags.config import FlagsConfig, PiiConfig, ToneConfig
from flags.types import Answer, Flag


class Broken:
    kind = "tone"

    def evaluate(self, answer: Answer) -> list[Flag]:
        raise RuntimeError("injected")


class Support:
    def support(self, claims, evidence):
        return [1.0 for _ in claims]


def test_the_config_chooses_the_evaluators():
    kinds = lambda config, support=None: [e.kind for e in evaluators(config, support)]  # noqa: E731
    assert kinds(FlagsConfig()) == ["promise", "tone", "pii"]  # no scorer: no faithfulness
    assert kinds(FlagsConfig(), Support()) == ["promise", "tone", "pii", "unfaithful"]
    assert kinds(FlagsConfig(tone=ToneConfig(enabled=False), pii=PiiConfig(enabled=False))) == ["promise"]


def test_a_failing_evaluator_is_reported_and_the_others_still_flag():
    answer = Answer(request_id="r", text="Write to me at a@example.com, you idiot.")
    chosen = [Broken(), *evaluators(FlagsConfig(), None)]
    checked = check(answer, chosen)
    assert checked.failed == ["tone"]
    assert sorted(f.kind for f in checked.flags) == ["pii", "tone"]
