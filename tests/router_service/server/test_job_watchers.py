"""The loops that keep a replica's jobs alive survive an unexpected fault: the jobs watcher
(end marks, heartbeats: a dead one lets another replica run its batches beside it) and the
batch take-over loop (a dead one leaves orphans waiting forever) log it and go on."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from router_service.clock import ManualClock
from router_service.responses import CANCELLED
from router_service.server import _jobs
from router_service.server._batches import BatchJobs


class _FlakyMarks:
    """End marks that fail once with a fault nobody mapped, then read the job cancelled."""

    def __init__(self) -> None:
        self.reads = 0

    async def marks(self, keys: list[Any]) -> list[bytes]:
        self.reads += 1
        if self.reads == 1:
            raise RuntimeError("unexpected")
        return [CANCELLED for _ in keys]


async def test_the_jobs_watcher_logs_a_fault_and_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_jobs, "CHECK_S", 0)
    job = SimpleNamespace(key=("c", "batch_1"), task=None, stop="", started=True)
    jobs = {job.key: job}
    stopped: list[str] = []

    def stop(stopping: Any, why: str) -> None:
        stopped.append(why)
        jobs.clear()  # the job ended: the watcher returns

    async def renew(running: list[Any]) -> None:
        pass

    records: Any = _FlakyMarks()
    with caplog.at_level(logging.ERROR, logger="switchboard.router"):
        await _jobs.watch_jobs(jobs, records, ManualClock(), (30.0, renew), stop)
    assert stopped == ["cancelled"] and records.reads == 2
    assert "watching them failed" in caplog.text


async def test_the_take_over_loop_logs_a_fault_and_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config = SimpleNamespace(state=SimpleNamespace(backend="redis"), batches=SimpleNamespace())
    config.batches.heartbeat_s = 0.0
    runtime: Any = SimpleNamespace(config=config)
    jobs = BatchJobs(lambda: runtime)
    rounds: list[int] = []

    async def adopt(runtime: Any) -> int:
        rounds.append(1)
        if len(rounds) == 1:
            raise RuntimeError("unexpected")
        jobs._closed = True  # as `shutdown` does: the loop ends
        return 0

    monkeypatch.setattr(jobs, "adopt", adopt)
    with caplog.at_level(logging.ERROR, logger="switchboard.router"):
        jobs.adopting()
        assert jobs._adopter is not None
        await asyncio.wait_for(jobs._adopter, 10)
    assert len(rounds) == 2 and "taking over orphans failed" in caplog.text
