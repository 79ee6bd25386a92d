"""Sentences of an answer or a passage: what promises and support are judged on."""

from __future__ import annotations

import re

# After . ! ? followed by space, or at line breaks (list items are sentences of their own).
_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9*-])|\n+")
_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


def sentences(text: str) -> list[str]:
    parts = (_LIST_MARK.sub("", part).strip() for part in _BOUNDARY.split(text))
    return [part for part in parts if part]
