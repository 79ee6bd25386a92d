"""How much of a user's text the answer journal keeps (`shadow.journal.store_text`).

- `full`: as said and answered (opt in: per category, or for the whole journal);
- `redacted` (the default): e-mail addresses, card numbers, phone numbers and API-key-like
  tokens replaced by a placeholder; the rest kept, so the draft-vs-sent match, the daily
  review and the router flywheel still work on it;
- `none`: no text at all, only the metadata (route, tags, latencies, agreement, ratings)
  the canaries and the rollout count.

E-mails, cards and phones are found as the answer flags find them (flags.pii), so the two
agree on what personal data is.
"""

from __future__ import annotations

import re
from typing import Literal, Mapping

from flags.pii import EMAIL, NUMBER_RUN, is_card, is_phone

TextPolicy = Literal["none", "redacted", "full"]

# Secrets people paste: provider prefixes (OpenAI sk-, GitHub ghp_, Slack xox*, AWS AKIA,
# this gateway's gw-), a bearer token, or any long run of letters and digits mixed.
_KEY_PREFIXED = re.compile(
    r"(?<![\w-])(?:sk|pk|rk|gw|ghp|gho|ghs|glpat|xox[abprs])[-_][A-Za-z0-9_-]{12,}|(?<!\w)AKIA[A-Z0-9]{16}(?!\w)"
)
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{12,}")
_LONG_TOKEN = re.compile(r"(?<![\w-])(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{32,}(?![\w-])")


def redact(text: str) -> str:
    """`text` with personal data and secrets replaced by `[email]`, `[card]`, `[phone]`, `[secret]`."""
    text = _BEARER.sub("[secret]", text)
    text = _KEY_PREFIXED.sub("[secret]", text)
    text = _LONG_TOKEN.sub("[secret]", text)
    text = EMAIL.sub("[email]", text)
    return NUMBER_RUN.sub(_number, text)


def _number(match: re.Match[str]) -> str:
    run = match.group(0)
    if is_card(run):
        return "[card]"
    return "[phone]" if is_phone(run) else run


def kept(text: str, policy: TextPolicy) -> str:
    """What the journal stores of `text` under `policy`."""
    if policy == "full":
        return text
    return redact(text) if policy == "redacted" else ""


def kept_optional(text: str | None, policy: TextPolicy) -> str | None:
    """`kept` for an optional text (a sent text, a comment): None under `none`."""
    if text is None or policy == "none":
        return None
    return kept(text, policy)


def kept_tags(tags: Mapping[str, str], policy: TextPolicy) -> dict[str, str]:
    """The client's own tags (`client.user`, `client.metadata.*`) are its text too; the
    gateway's (tier, route, category, mode…) are what the readers filter on: always kept."""
    result = {}
    for key, value in tags.items():
        if not key.startswith("client."):
            result[key] = value
        elif policy != "none":
            result[key] = kept(value, policy)
    return result
