"""A stream's opening stepped past its first-chunk window on the router's clock, without real
time: the fake upstream sends its events a step at a time (`Scenario.stepped_chunks`), and
before each the test moves the router's ManualClock on by less than the window, once the router
has started the window again at the event before (its `when()` a whole window ahead). The steps
add up to more than the window: a router that did not start it again at an event is caught."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.helpers import eventually

# What the clock moves before each step, a share of the window.
STEP_SHARE = 0.8


async def step_past_the_window(
    fake: FakeUpstream,
    clock: ManualClock,
    window_s: float,
    steps: int,
    reading: asyncio.Future[Any],
) -> None:
    """Release the `steps` held events of the stream that `reading` reads, one at a time."""
    for step in range(1, steps + 1):

        async def started_again() -> bool:
            if reading.done() or fake.state.count() > 1:  # failed: shown below
                return True
            ahead = pytest.approx(clock.monotonic() + window_s)
            return fake.state.held == 1 and any(w.when() == ahead for w in clock.windows)

        what = f"event {step} held, the window started again at the one before"
        await eventually(started_again, what=what)
        assert fake.state.count() == 1, f"the window ended before event {step}: asked again"
        ended = reading.done() and (reading.exception() or reading.result())
        assert not ended, (
            f"ended while event {step} waited for the window to start again: {ended!r}"
        )
        clock.advance(STEP_SHARE * window_s)
        fake.state.release()
