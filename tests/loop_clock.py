"""`move_loop_clock`: the running loop's clock moved on, as a callback holding the loop that long
would move it (a stall of our own loop: a long callback, a collector pause). Used by the tests of
every connect that must not time out across such a stall (`router_service._connect_deadline`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

__all__ = ["move_loop_clock"]


@pytest.fixture
async def move_loop_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Moves the running loop's clock on by so many seconds, as a callback holding the loop that
    long would: the timers due meanwhile come due together with what the sockets got."""
    loop = asyncio.get_running_loop()
    moved = [0.0]
    real_time = loop.time
    monkeypatch.setattr(loop, "time", lambda: real_time() + moved[0])

    def move(seconds: float) -> None:
        moved[0] += seconds

    return move
