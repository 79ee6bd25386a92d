"""The gate's simple features: each says what it should about a message."""

from __future__ import annotations

import pytest

from gate.features import FEATURE_NAMES, FEATURE_VERSION, message_features, schema_hash


def feature(text: str, name: str) -> float:
    return message_features(text)[FEATURE_NAMES.index(name)]


def test_one_value_per_name():
    assert len(message_features("hello")) == len(FEATURE_NAMES)
    assert message_features("") == pytest.approx([0.0] * len(FEATURE_NAMES))


@pytest.mark.parametrize(("text", "unresolved"), [
    ("it still doesn't work", 1.0),
    ("any update on that?", 1.0),
    ("when will this be fixed?", 1.0),
    ("my order 48213 never arrived, where is it?", 0.0),  # "order" comes before "it"
    ("how do I reset my password?", 0.0),  # no pronoun at all
])
def test_a_pronoun_without_antecedent(text, unresolved):
    assert feature(text, "unresolved_deictic") == unresolved


def test_questions_greetings_and_identifiers():
    assert feature("where is it?", "question_mark") == 1.0
    assert feature("where is it", "question_mark") == 0.0
    assert feature("hey, thanks so much!", "greeting_words") == 2.0
    assert feature("hi, how are you doing", "social_phrase") == 1.0
    assert feature("cancel order #48213", "identifier") == 1.0
    assert feature("cancel my order", "identifier") == 0.0
    assert feature("still waiting, any news?", "followup_cues") == 2.0


def test_length_grows_with_the_message():
    assert feature("ok", "log_chars") < feature("I would like to change the delivery address", "log_chars")
    assert feature("one two three", "words") == 3.0


def test_the_schema_hash_follows_names_order_and_version():
    base = schema_hash(FEATURE_NAMES, FEATURE_VERSION)
    assert schema_hash(FEATURE_NAMES, FEATURE_VERSION) == base
    assert schema_hash(tuple(reversed(FEATURE_NAMES)), FEATURE_VERSION) != base
    assert schema_hash(FEATURE_NAMES, FEATURE_VERSION + "x") != base
