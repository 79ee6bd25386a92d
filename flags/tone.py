"""Rude tone: a documented lexicon rule, not a learned model.

No labelled data on rudeness in customer support could be had offline under a licence
that allows training here (the toxicity and hate-speech sets on PyPI download their data
from the web at run time, and profanity is not what a support bot gets wrong), so this is
a word-and-phrase rule, and it is called one. It looks for three things an agent must not
write to a customer:
- insults and profanity aimed at anyone ("idiot", "stupid", "damn", …);
- dismissal ("not my problem", "deal with it", "I don't care", "figure it out yourself");
- condescension ("as I already told you", "obviously you", "calm down", "read the manual").
Each phrase matches on word boundaries, case-insensitively; ops add terms live
(`tone.extra_terms`). Its recall on real rude answers is not measured: treat a quiet
tone-flag rate as "none of these phrases", not as "polite".
"""

from __future__ import annotations

import re

from flags.config import ToneConfig
from flags.types import Answer, Flag, Kind

INSULTS = (
    "idiot", "idiots", "idiotic", "stupid", "dumb", "moron", "moronic", "imbecile", "fool", "foolish",
    "pathetic", "ridiculous", "incompetent", "clueless", "loser", "shut up", "damn", "damned", "crap",
    "shit", "bullshit", "fuck", "fucking", "fucked", "wtf", "bloody hell", "hell no", "screw you",
    "piss off", "pissed", "bitch", "bastard", "jerk", "nonsense",
)
DISMISSAL = (
    "not my problem", "not our problem", "your problem", "deal with it", "i don't care", "we don't care",
    "i do not care", "who cares", "figure it out yourself", "do it yourself", "stop asking", "stop bothering",
    "stop wasting", "waste of my time", "waste of our time", "too bad", "tough luck", "get over it",
    "go away", "leave me alone", "whatever you say", "that's your fault", "your own fault", "your fault",
    "nothing we can do for you", "not going to help you", "won't help you",
)
CONDESCENSION = (
    "as i already told you", "as i already said", "as i said before", "as i've already explained",
    "i already told you", "how many times", "obviously you", "clearly you", "you obviously", "you clearly",
    "calm down", "read the manual", "read the instructions", "read the faq", "learn to read",
    "try to understand", "it's not rocket science", "any child could", "you should have known",
    "did you even", "are you even",
)
LEXICON = (*INSULTS, *DISMISSAL, *CONDESCENSION)


class ToneEvaluator:
    kind: Kind = "tone"

    def __init__(self, config: ToneConfig) -> None:
        self._config = config
        terms = sorted({t.lower() for t in (*LEXICON, *config.extra_terms)}, key=len, reverse=True)
        # Apostrophes typed either way; word boundaries so "dumbbell" or "scrapped" never match.
        alternatives = (re.escape(t).replace("'", "['’]") for t in terms)
        self._pattern = re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)

    def evaluate(self, answer: Answer) -> list[Flag]:
        hits = [m.group(0).lower() for m in self._pattern.finditer(answer.text)]
        if len(hits) < self._config.min_hits:
            return []
        unique = ", ".join(f"'{hit}'" for hit in dict.fromkeys(hits))
        return [Flag(kind="tone", score=float(len(hits)), detail=f"lexicon: {unique}")]
