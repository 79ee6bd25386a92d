"""What answers cost: prices per tier, spend per key, category and tier, and per-key budgets."""
