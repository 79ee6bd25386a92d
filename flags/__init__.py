"""Flags on sent answers (design note 002, phase 3): evaluators that read an answer a
customer already has and flag what could damage the company's reputation, for a person
to follow up. They never change, block or delay an answer.

- `promises`: refund amounts, durations, dates and guarantees the policy does not allow;
- `tone`: rude or dismissive wording (a documented lexicon rule, not a learned model);
- `pii`: e-mail addresses, card numbers (Luhn-checked) and phone numbers in the answer;
- `faithfulness`: sentences of a grounded answer that the chunks it cited do not support.

Each evaluator is `Evaluator.evaluate(answer) -> list[Flag]` (`types.py`); `checker.py`
runs the configured set (`config.py`, the live `user_config.flags` section).
"""
