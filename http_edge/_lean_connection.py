"""An edge connection's waiting structures without uvicorn's empty deques.

uvicorn makes three deques a connection: its pipeline of requests read ahead, and the waiters of
two `asyncio.Event`s (its flow control's "writable", its request cycle's "message arrived").
A deque holds its first block of 64 slots (~0.6 KiB) from its making, empty or not, and an
idle open stream holds all three for as long as it is open (benchmarks/README.md, "uvicorn's
deques"). Almost always they stay empty (a pipelined request, a paused write or a `receive`
waiting for body bytes are the exceptions): a list holds nothing until something is in it.
`EdgeHttpProtocol` puts these in place of uvicorn's as it makes them.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["Pipeline", "lean_event"]


class Pipeline(list[Any]):
    """uvicorn's pipeline as a list: it only appends on the left, pops on the right and asks
    whether any request waits (a pipelined request is rare: the shift on the left is cheap)."""

    __slots__ = ()

    def appendleft(self, item: Any) -> None:
        self.insert(0, item)


def lean_event(event: asyncio.Event) -> asyncio.Event:
    """`event` (made but not yet waited for) with its waiters in a list: asyncio's `Event`
    appends a waiter, iterates them to wake them and removes each as it returns, all of which
    a list does."""
    event._waiters = []  # type: ignore[assignment]  # asyncio's own: a deque
    return event
