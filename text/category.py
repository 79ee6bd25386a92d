"""A request's category, normalised once.

Clients send `metadata.category` as they like (`Billing`, ` billing `); ops write config
keys as they like. Every feature that keys on a category (router overrides, shadow rules,
rollout modes, grounding domains, adapter hints, flags) compares normalised values, so
one spelling reaches the same override, rule, mode and domain everywhere.
"""

from __future__ import annotations


def normalise_category(value: str | None) -> str | None:
    """Trimmed and case-folded; None for none or blank."""
    if value is None:
        return None
    folded = value.strip().casefold()
    return folded or None
