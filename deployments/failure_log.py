"""Background failures of an engine replica, counted into Ray's metrics.

An engine replica has no HTTP `/metrics` of its own, so the count goes to Ray's metrics
(`ray.util.metrics`), which every node's metrics agent exports with Ray's prefix:
`ray_gateway_background_failures_total{task=...}`, beside the ingress's own
`gateway_background_failures_total`.
"""

from __future__ import annotations

import functools

from background.failures import CountFailure


@functools.cache
def ray_failure_counter() -> CountFailure:
    """`CountFailure` into Ray's metrics; one Counter per replica process."""
    from ray.util.metrics import Counter

    counter = Counter(
        "gateway_background_failures", "Failed runs of a background task (load reports, adapter sync)",
        tag_keys=("task",),
    )
    return lambda task: counter.inc(tags={"task": task})
