"""Time as an injected dependency. Cooldowns and leases are wall-clock deadlines (replicas share
them); timeouts use the monotonic clock. Tests move a ManualClock instead of sleeping."""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Protocol, Self


class Window(Protocol):
    """A timeout window on a clock, `asyncio.Timeout`'s shape: `async with` it, and the block
    is cancelled (TimeoutError raised) once the clock reaches `when()`, given on its
    `monotonic()`; `reschedule` moves that instant (None: never)."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None: ...

    def when(self) -> float | None: ...

    def reschedule(self, when: float | None) -> None: ...


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

    def timeout(self, seconds: float | None) -> Window:
        """A window that ends `seconds` from now on this clock (a ManualClock's when a test
        advances it past that instant): what an upstream's silence is timed by."""
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

    # asyncio's own: its `when` on the loop's time, which is time.monotonic() (uvloop's: the
    # same clock in milliseconds, read once per turn of the loop).
    timeout = staticmethod(asyncio.timeout)


class ManualClock:
    """A clock that moves only when told to. Shipped in the package: users test with it too."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._mono = 1000.0
        # Who waits for the monotonic clock to reach an instant (`wait`), woken by `advance`.
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []
        self._windows: set[_ManualWindow] = set()  # entered and not yet ended (`timeout`)

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

    def timeout(self, seconds: float | None) -> Window:
        return _ManualWindow(self, None if seconds is None else self._mono + seconds)

    @property
    def windows(self) -> list[Window]:
        """The windows open on it now (`timeout`): a test watches one move (`when`)."""
        return list(self._windows)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._now += seconds
        self._mono += seconds
        for until, woken in self._waiters:
            if until <= self._mono and not woken.done():
                woken.set_result(None)
        for window in list(self._windows):
            window.check()


class _ManualWindow:
    """asyncio.timeout on a ManualClock: an asyncio.Timeout that never ends by itself, made to
    end at once (in loop time) when the clock is found at or past `when`, so that the block is
    cancelled and TimeoutError raised exactly as asyncio's own does."""

    def __init__(self, clock: ManualClock, when: float | None) -> None:
        self._clock = clock
        self._when = when
        self._timeout = asyncio.timeout(None)

    async def __aenter__(self) -> Self:
        await self._timeout.__aenter__()
        self._clock._windows.add(self)
        self.check()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._clock._windows.discard(self)
        await self._timeout.__aexit__(kind, exc, tb)

    def when(self) -> float | None:
        return self._when

    def reschedule(self, when: float | None) -> None:
        self._when = when
        self.check()

    def check(self) -> None:
        """End the window at once if the clock has reached its instant, or no longer if it was
        moved on before it ended (as asyncio.Timeout's `reschedule`)."""
        if self._timeout.expired():
            return
        due = self._when is not None and self._when <= self._clock.monotonic()
        self._timeout.reschedule(asyncio.get_running_loop().time() if due else None)


SYSTEM_CLOCK = SystemClock()
