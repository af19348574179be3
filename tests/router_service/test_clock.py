"""ManualClock.wait: a background loop's period on the test's clock. It wakes when the test
advances the clock past it (and not before), without moving the clock itself; a cancelled
wait leaves nothing behind."""

from __future__ import annotations

import asyncio

import pytest

from router_service.clock import SYSTEM_CLOCK, ManualClock


async def test_a_wait_ends_when_the_clock_is_advanced_past_it_and_never_moves_it() -> None:
    clock = ManualClock()
    start = clock.monotonic()
    waiting = asyncio.create_task(clock.wait(10))
    await asyncio.sleep(0)  # it waits now
    clock.advance(9.5)
    await asyncio.sleep(0)
    assert not waiting.done()
    clock.advance(0.5)
    await asyncio.wait_for(waiting, 15)
    assert clock.monotonic() - start == 10  # only the test's advances moved it
    await clock.wait(0)  # nothing to wait for

    cancelled = asyncio.create_task(clock.wait(10))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert clock._waiters == []


async def test_a_window_ends_when_the_clock_is_advanced_past_it_as_asyncios_would() -> None:
    """ManualClock.timeout: asyncio.timeout on the test's clock. Its block is cancelled and
    TimeoutError raised once the clock is advanced to its instant, not before (however long
    the loop runs); `reschedule` moves that instant on, as asyncio's does."""
    clock = ManualClock()
    started = asyncio.Event()

    async def block(seconds: float) -> None:
        async with clock.timeout(seconds) as window:
            assert window.when() == clock.monotonic() + seconds
            started.set()
            await asyncio.Event().wait()  # never set: only the window ends it

    waiting = asyncio.create_task(block(0.3))
    await started.wait()
    clock.advance(0.2)
    await asyncio.sleep(0.01)  # real time runs on: the window is on the clock, not the loop
    assert not waiting.done()
    clock.advance(0.1)
    await asyncio.wait([waiting], timeout=15)  # a hang guard: its own end is no TimeoutError
    assert isinstance(waiting.exception(), TimeoutError)
    assert clock._windows == set()

    async with clock.timeout(0.5) as moved:
        moved.reschedule(clock.monotonic() + 2)  # moved on before it ended
        clock.advance(1)
        await asyncio.sleep(0)
        assert moved.when() == clock.monotonic() + 1
    with pytest.raises(TimeoutError):
        async with clock.timeout(None) as never:
            never.reschedule(clock.monotonic())  # due now: ends at once
            await asyncio.Event().wait()
    async with SYSTEM_CLOCK.timeout(5) as real:  # the system clock's is asyncio's own
        assert isinstance(real, asyncio.Timeout)
