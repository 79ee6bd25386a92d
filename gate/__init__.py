"""Answerability gate: should the gateway answer this message at all (design note 000,
"Trigger Classification Model")? Chitchat and messages without enough context get the
hand-off text instead of a model's answer."""
