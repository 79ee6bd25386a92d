"""Per-key rate-limit counters shared by every ingress replica (one Ray Serve replica).

Each ingress replica asks here before admitting a keyed request, so N gateway replicas
enforce one budget per key rather than N. `num_replicas=1` on purpose: the counters
are the state.
"""

from __future__ import annotations

from ray import serve
from ray.serve.handle import DeploymentHandle

from gateway.auth import Admission, MinuteWindows


@serve.deployment(
    num_replicas=1,
    max_ongoing_requests=10_000,
    ray_actor_options={"num_cpus": 0},
    logging_config={"enable_access_log": False},
)
class LimitBoard:
    def __init__(self) -> None:
        self._windows = MinuteWindows()

    def admit(self, key: str, rpm: int | None, tpm: int | None) -> Admission:
        return self._windows.admit(key, rpm, tpm)

    def charge(self, key: str, tokens: int) -> None:
        self._windows.charge(key, tokens)


class BoardRateLimiter:
    """`gateway.auth.RateLimiter` over the shared board."""

    def __init__(self, board: DeploymentHandle) -> None:
        self._board = board

    async def admit(self, key: str, rpm: int | None, tpm: int | None) -> Admission:
        return await self._board.admit.remote(key, rpm, tpm)

    async def charge(self, key: str, tokens: int) -> None:
        await self._board.charge.remote(key, tokens)
