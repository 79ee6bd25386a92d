"""Rude tone, a lexicon rule: insults, dismissal and condescension are flagged on word
boundaries; polite answers and words that merely contain a term are not."""

from __future__ import annotations

import pytest

from flags.config import ToneConfig
from flags.tone import ToneEvaluator
from flags.types import Answer


def flags(text: str, config: ToneConfig = ToneConfig()):
    return ToneEvaluator(config).evaluate(Answer(request_id="r", text=text))


@pytest.mark.parametrize("text", [
    "That's a stupid question.",
    "As I already told you, the refund is on its way.",
    "Honestly, that's not my problem.",
    "Please calm down and read the FAQ.",
    "I don’t care which card you used.",  # a typographic apostrophe
])
def test_rude_answers_are_flagged(text):
    found = flags(text)
    assert len(found) == 1 and found[0].kind == "tone" and found[0].score >= 1


@pytest.mark.parametrize("text", [
    "I'm sorry for the trouble; I'll be glad to help you with your refund.",
    "The dumbbell set was scrapped from the catalogue.",  # contains 'dumb' and 'crap' inside words
    "Thank you for your patience while we check your order.",
])
def test_polite_answers_are_not_flagged(text):
    assert flags(text) == []


def test_extra_terms_and_min_hits_are_configurable():
    assert flags("Kindly stop emailing us.", ToneConfig(extra_terms=["stop emailing"]))
    assert flags("That is stupid.", ToneConfig(min_hits=2)) == []
    found = flags("That is stupid and, as I said before, not my problem.", ToneConfig(min_hits=2))
    assert found and found[0].score == 3 and "'not my problem'" in found[0].detail
