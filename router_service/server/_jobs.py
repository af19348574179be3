"""What the router's long-running jobs share (background responses: `_background.py`; batches:
`_batches.py`). A job is owned by the router process, not by the call that started it: its task
outlives that call, and the server stops it on its way down (`shutdown`: the jobs get the same
grace as open calls, then each is stopped, and writes itself `failed`).

One watcher task per kind and replica, while it runs jobs (`watch_jobs`): every second
(`CHECK_S`) it reads the end marks of all its jobs at once and stops those cancelled (or deleted)
on another replica (a cancel on this one stops its job at once), and every third of the
heartbeat it renews their heartbeats (`renew`: a background response's, so that a crashed
replica's jobs read `failed`; a batch's claim, so that another replica takes it over).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Generic, Protocol, TypeVar

from router_service.clock import Clock
from router_service.errors import StoreUnavailableError
from router_service.responses import CANCELLED, DELETED, BackgroundRecords, JobId

__all__ = ["CHECK_S", "Job", "OwnedJobs", "Renew", "watch_jobs"]

log = logging.getLogger("switchboard.router")

CHECK_S = 1.0  # how often a replica reads its jobs' cancel marks


class Job(Protocol):
    """A job as `OwnedJobs` and `watch_jobs` look after it."""

    key: JobId
    task: asyncio.Task[None] | None
    stop: str  # why its task was cancelled ("cancelled", "deleted", "stopped"); "" while it runs
    started: bool  # its task ran: one cancelled before that never runs its cleanup


_J = TypeVar("_J", bound=Job)
Renew = Callable[[list[_J]], Awaitable[None]]  # renews the heartbeats of running jobs


class OwnedJobs(Generic[_J]):
    """The jobs of one kind this replica runs, and their watcher."""

    def __init__(self) -> None:
        self._jobs: dict[JobId, _J] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def running(self) -> int:
        return len(self._jobs)

    def listed(self) -> list[_J]:
        """The jobs this replica runs now (AdminService.ListJobs)."""
        return list(self._jobs.values())

    def close(self) -> None:
        """Start no more jobs (a stop began)."""
        self._closed = True

    async def shutdown(self, grace_s: float) -> None:
        """Let the jobs run up to `grace_s`, then stop the rest (each writes itself `failed`:
        its replica stopped). Idempotent."""
        self.close()
        tasks = [job.task for job in self._jobs.values() if job.task is not None]
        if grace_s > 0:
            await self.settle(grace_s)
        for job in list(self._jobs.values()):
            self._stop(job, "stopped")
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)

    async def settle(self, within_s: float) -> int:
        """Wait up to `within_s` seconds for the jobs running now to end; how many did not."""
        tasks = [job.task for job in self._jobs.values() if job.task is not None]
        if not tasks:
            return 0
        _, pending = await asyncio.wait(tasks, timeout=within_s)
        return len(pending)

    def _stop(self, job: _J, why: str) -> None:
        if not job.stop and job.task is not None:
            job.stop = why
            if job.started:  # else it stops as it starts, its cleanup run
                job.task.cancel()

    def _watch(
        self, records: BackgroundRecords, clock: Clock, heartbeat_s: float, renew: Renew[_J]
    ) -> None:
        """Start the watcher unless it runs."""
        if self._watcher is None or self._watcher.done():
            watch = watch_jobs(self._jobs, records, clock, (heartbeat_s, renew), self._stop)
            self._watcher = asyncio.create_task(watch, name="switchboard-jobs")


async def watch_jobs(
    jobs: Mapping[JobId, _J],
    records: BackgroundRecords,
    clock: Clock,
    heartbeat: tuple[float, Renew[_J]],
    stop: Callable[[_J, str], None],
) -> None:
    """While `jobs` has any: every CHECK_S read their end marks at once (in `records`:
    background responses' or batches') and `stop` those cancelled (or deleted) on another
    replica, and every third of the `heartbeat` renew their heartbeats."""
    heartbeat_s, renew = heartbeat
    beaten = clock.monotonic()
    while jobs:
        await asyncio.sleep(CHECK_S)
        running = list(jobs.values())
        if not running:
            return
        try:
            marks = await records.marks([job.key for job in running])
            for job, mark in zip(running, marks, strict=True):
                if mark in (CANCELLED, DELETED):
                    stop(job, mark.decode())
            if clock.monotonic() - beaten >= heartbeat_s / 3:
                beaten = clock.monotonic()
                await renew([job for job in running if not job.stop])
        except StoreUnavailableError as exc:  # the next second tries again
            log.warning("background jobs: the state store failed: %s", exc.message)
        except Exception:  # a bug, or a store fault not mapped: the watcher dying would stop
            # the heartbeats, and another replica would run these jobs beside this one
            log.exception("background jobs: watching them failed; the next second tries again")
