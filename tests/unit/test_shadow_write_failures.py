"""A shadow job that fails (a full disk under the shadow store) is counted, and the
queue keeps working."""

from __future__ import annotations

from background.workers import WorkerQueue


async def test_failed_jobs_are_counted_and_the_queue_goes_on():
    failures = []
    mirror = WorkerQueue(queue_size=8, concurrency=1, on_failure=lambda: failures.append(1))
    done = []

    async def full_disk() -> None:
        raise OSError(28, "No space left on device")

    async def fine() -> None:
        done.append(1)

    mirror.start()
    for job in (full_disk, full_disk, fine):
        assert mirror.offer(job)
    await mirror.drain()
    await mirror.stop()
    assert (len(failures), mirror.failed, len(done)) == (2, 2, 1)
