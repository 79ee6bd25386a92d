"""Cascades: the cheapest suitable tier answers first, and the answer's own confidence
decides whether it is returned or the next tier is asked (gateway/cascading.py runs it)."""
