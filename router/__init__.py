"""Routing policy: pure functions of a query and the tiers' load. No I/O here."""
