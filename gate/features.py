"""Simple features of one message, beside its embedding.

What the embedding alone blurs: how long a message is, whether it asks, whether it greets
or thanks, and whether its pronouns point at something it never names ("it still doesn't
work": no thing before "it"). The names below are the schema: change one and the schema
hash changes, so a model trained on the old set refuses to load.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Iterable

FEATURE_VERSION = "1"

FEATURE_NAMES: tuple[str, ...] = (
    "log_chars",
    "words",
    "question_mark",
    "exclamation",
    "greeting_words",
    "social_phrase",
    "deictic_words",
    "content_words",
    "unresolved_deictic",
    "followup_cues",
    "identifier",
    "second_person",
    "first_person",
)

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_GREETING = frozenset(
    "hi hello hey hiya howdy yo sup thanks thank thx ty cheers bye goodbye lol haha hahaha lmao "
    "morning evening afternoon night welcome nice cool awesome great ok okay yeah yep yes nope".split()
)
_SOCIAL = re.compile(
    r"\b(how are (you|u)|how('s| is) it going|what'?s up|nice to meet|how (was|is) your|good (morning|night|evening)"
    r"|have a (good|nice|great)|see (you|ya)|talk (to you )?later|how have you been)\b"
)
_DEICTIC = frozenset("it this that these those them they there same one ones".split())
# Words that name nothing a support agent could act on: function words, generic verbs and
# nouns ("problem", "thing"). A pronoun with none of the other words before it has no antecedent.
_EMPTY = frozenset(
    """a an the and or but so if then than of to in on at for from with about by as into over after
    before again still yet already just also too very really now anymore ever never not no
    i me my mine we us our you your u ur he him his she her they their its it's is am are was were
    be been being do does did done doing have has had having will would can could should shall may
    might must let lets get got getting gets make made take took go went gone going come came
    work works worked working fix fixed fixing help happen happened happening check checked see
    seen saw look looked know tell told say said says try tried want need please pls any anything
    something nothing some what when where why how who which whose whom yes ok okay well hey hi
    thing things stuff problem problems issue issues one ones update updates news status
    here there this that these those them same other another else""".split()
)
_FOLLOWUP = frozenset("still again yet already anymore update updates news status since earlier previous".split())
_IDENTIFIER = re.compile(r"#?\d{3,}|[A-Z]{2,}-?\d+|\S+@\S+\.\w+")
_SECOND = frozenset("you your u ur yours yourself".split())
_FIRST = frozenset("i me my mine we our us".split())


def message_features(text: str) -> list[float]:
    """FEATURE_NAMES, in order, for one message."""
    lowered = text.lower()
    words = _WORD.findall(lowered)
    deictic = [i for i, w in enumerate(words) if w in _DEICTIC]
    content = [i for i, w in enumerate(words) if w not in _EMPTY and w not in _DEICTIC and not w.isdigit()]
    unresolved = bool(deictic) and (not content or content[0] > deictic[0]) and len(content) <= 2
    return [
        math.log1p(len(text)),
        float(len(words)),
        float("?" in text),
        float("!" in text),
        float(sum(w in _GREETING for w in words)),
        float(bool(_SOCIAL.search(lowered))),
        float(len(deictic)),
        float(len(content)),
        float(unresolved),
        float(sum(w in _FOLLOWUP for w in words)),
        float(bool(_IDENTIFIER.search(text))),
        float(sum(w in _SECOND for w in words)),
        float(sum(w in _FIRST for w in words)),
    ]


def schema_hash(names: Iterable[str], version: str) -> str:
    """Identifies a feature layout: names, order and the extractor version."""
    return hashlib.sha256(("|".join(names) + "#" + version).encode()).hexdigest()[:16]
