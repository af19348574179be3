"""ManualClock.wait: a background loop's period on the test's clock. It wakes when the test
advances the clock past it (and not before), without moving the clock itself; a cancelled
wait leaves nothing behind."""

from __future__ import annotations

import asyncio

from router_service.clock import ManualClock


async def test_a_wait_ends_when_the_clock_is_advanced_past_it_and_never_moves_it() -> None:
    clock = ManualClock()
    start = clock.monotonic()
    waiting = asyncio.create_task(clock.wait(10))
    await asyncio.sleep(0)  # it waits now
    clock.advance(9.5)
    await asyncio.sleep(0)
    assert not waiting.done()
    clock.advance(0.5)
    await asyncio.wait_for(waiting, 5)
    assert clock.monotonic() - start == 10  # only the test's advances moved it
    await clock.wait(0)  # nothing to wait for

    cancelled = asyncio.create_task(clock.wait(10))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert clock._waiters == []
