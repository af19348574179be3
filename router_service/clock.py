"""Time as an injected dependency. Cooldowns and leases are wall-clock deadlines (replicas share
them); timeouts use the monotonic clock. Tests move a ManualClock instead of sleeping."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock seconds since the epoch: deadlines that other replicas read."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back: durations within this process."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait on this clock (a ManualClock just moves forward)."""
        ...

    async def wait(self, seconds: float) -> None:
        """Wait until this clock has moved `seconds` on, without moving it: the period of a
        background loop (a ManualClock wakes it when a test advances it that far; its `sleep`
        moves time itself, as the code under test waiting would)."""
        ...


class SystemClock:
    # The C functions themselves, without a Python frame around each reading: a request reads
    # the clocks ~15 times, a stream more (benchmarks/README.md, 2026-12-05).
    now = staticmethod(time.time)
    monotonic = staticmethod(time.monotonic)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to. Shipped in the package: users test with it too."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._mono = 1000.0
        # Who waits for the monotonic clock to reach an instant (`wait`), woken by `advance`.
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)

    async def wait(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        waiter = (self._mono + seconds, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            await waiter[1]
        finally:
            self._waiters.remove(waiter)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._now += seconds
        self._mono += seconds
        for until, woken in self._waiters:
            if until <= self._mono and not woken.done():
                woken.set_result(None)


SYSTEM_CLOCK = SystemClock()
