"""The tasks of the calls the router is handling, so that a stop can wait for them.

grpc's graceful stop cancels the calls still open when the grace ends and returns at once; their
handlers then still have cleanup to run (a lease given back, a stream slot freed: round trips to
the state store). Closing the store under them failed those releases (a key held in Redis until
its TTL) and left their tasks pending when the process ended, which grpc logged as tracebacks.
"""

from __future__ import annotations

import asyncio
from typing import Any


class RunningCalls:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def enter(self) -> asyncio.Task[Any] | None:
        """The current call's task, now counted until `leave`."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        return task

    def leave(self, task: asyncio.Task[Any] | None) -> None:
        if task is not None:
            self._tasks.discard(task)

    async def settle(self, within_s: float) -> int:
        """Wait up to `within_s` seconds for the calls under way to end; how many did not."""
        running = [task for task in self._tasks if not task.done()]
        if not running:
            return 0
        _, pending = await asyncio.wait(running, timeout=within_s)
        return len(pending)
