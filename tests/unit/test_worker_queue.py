"""A worker queue never blocks or fails the caller: full queue → dropped, failing job → counted."""

from __future__ import annotations

import asyncio

from background.workers import WorkerQueue


async def test_offer_never_waits_and_drops_when_full():
    mirror = WorkerQueue(queue_size=2, concurrency=1)  # not started: nothing drains
    ran: list[int] = []

    def job(i: int):
        async def run() -> None:
            ran.append(i)
        return run

    assert [mirror.offer(job(i)) for i in range(4)] == [True, True, False, False]
    assert mirror.dropped == 2
    mirror.start()
    await mirror.drain()
    assert ran == [0, 1] and mirror.completed == 2
    await mirror.stop()


async def test_concurrency_is_bounded():
    mirror = WorkerQueue(queue_size=10, concurrency=2)
    active, peak = 0, 0

    async def job() -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1

    mirror.start()
    for _ in range(8):
        assert mirror.offer(job)
    await mirror.drain()
    await mirror.stop()
    assert peak == 2 and mirror.completed == 8


async def test_a_failing_job_is_counted_and_the_workers_go_on():
    mirror = WorkerQueue(queue_size=4, concurrency=1)

    async def boom() -> None:
        raise RuntimeError("shadow target down")

    async def fine() -> None:
        return None

    mirror.start()
    mirror.offer(boom)
    mirror.offer(fine)
    await mirror.drain()
    await mirror.stop()
    assert (mirror.failed, mirror.completed) == (1, 1)
