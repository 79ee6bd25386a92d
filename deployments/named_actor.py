"""A plain Ray actor that a Serve application's replicas share by name.

For state every replica reads or writes several times a second (the load board), a Serve
deployment is the expensive way: a Serve handle call cost ~2.7 ms of CPU on each side on
this 2-core machine against ~0.5 ms for an actor call (docs/benchmarks.md). The actor has
no controller behind it, so its life is tied to the application another way: whichever
replica calls first creates it and owns it, Ray ends it with that replica, and the next
call after that creates it again. Every possible owner is a replica of the application,
so the actor never outlives it.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import ray
from ray import serve
from ray.actor import ActorClass, ActorHandle
from ray.exceptions import RayActorError


def app_scoped(name: str) -> str:
    """`name` within the calling replica's Serve application (two applications, two actors)."""
    return f"{serve.get_replica_context().replica_id.deployment_id.app_name}:{name}"


class NamedActor:
    """Calls `cls`'s actor named `name`, creating it if it is not there. A call that finds
    the actor dead drops the handle, so the next call resolves (or creates) it again."""

    def __init__(self, cls: ActorClass, name: str) -> None:
        self.name = name
        self._cls = cls
        self._actor: ActorHandle | None = None
        self._lock = threading.Lock()  # a publisher's thread and the replica's loop both call

    def _resolve(self) -> ActorHandle:
        with self._lock:
            if self._actor is None:
                self._actor = self._cls.options(name=self.name, get_if_exists=True).remote()
            return self._actor

    def _forget(self, actor: ActorHandle) -> None:
        with self._lock:
            if self._actor is actor:
                self._actor = None

    def call_blocking(self, method: str, *args: Any, timeout_s: float) -> Any:
        """For a thread of its own, never the event loop."""
        actor = self._resolve()
        try:
            return ray.get(getattr(actor, method).remote(*args), timeout=timeout_s)
        except RayActorError:
            self._forget(actor)
            raise

    async def call(self, method: str, *args: Any) -> Any:
        # Resolving is a blocking GCS call (the first call, and after the actor is gone): off the loop.
        actor = self._actor or await asyncio.to_thread(self._resolve)
        try:
            return await getattr(actor, method).remote(*args)
        except RayActorError:
            self._forget(actor)
            raise
