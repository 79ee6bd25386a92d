"""Shadow traffic: mirror a sample of requests to another target, compare, store, decide.

Groundwork for issue 6 (not yet wired into the app): the durable store of primary/shadow
pairs and decisions, and the fire-and-forget mirror queue.
"""
