"""A remote tier called straight from the ingress replica (`openai.direct`).

An engine replica in front of an HTTP endpoint only relays: dropping it saves a Ray hop
each way (measured in load_tests/bench_gateway_only.py). What that replica did for the
tier moves here: the pooled client lives on this replica's event loop, the upstream's
/metrics scrape runs beside it, and the tier's load goes to the load board under this
replica's id, so the router still sees the whole tier (load_board.py sums the ingress
replicas' in-flight counts and takes the scraped queue as a floor).
"""

from __future__ import annotations

import asyncio
import logging

from deployments.load_board import BoardClient, LoadPublisher
from deployments.tier_engines import build_remote
from engines.openai_remote import OpenAIRemoteEngine, RemoteSpec
from engines.types import Tier
from background.failures import CountFailure, log_if_it_dies

logger = logging.getLogger("ray.serve")


class DirectTier:
    """Built in the replica's constructor, which Ray Serve runs on the replica's loop."""

    def __init__(
        self, recipe: RemoteSpec, tier: Tier, board: BoardClient, replica: str, count_failure: CountFailure
    ) -> None:
        self.engine: OpenAIRemoteEngine = build_remote(recipe, count_failure)
        self._upkeep = asyncio.get_running_loop().create_task(self.engine.run())
        log_if_it_dies(self._upkeep, f"upstream-metrics-{tier}", logger, count_failure)
        self._publisher = LoadPublisher(
            board, tier, f"direct-{replica}", self.engine.in_flight_now, count_failure=count_failure,
            upstream=self.engine.upstream_now,
        )
        self._publisher.start()

    def close(self) -> None:
        self._publisher.stop()
        self._upkeep.cancel()
        self.engine.shutdown()
