"""Shadow traffic: mirror a sample of requests to another target, compare, store, decide.

The durable store of primary/shadow pairs, feedback and decisions, the fire-and-forget
mirror queue and the adapter canaries. The app wires it in through `gateway.assembly`
and `gateway.shadow_edge` (which hands it each finished answer).
"""
