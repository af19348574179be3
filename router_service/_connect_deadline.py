"""A connect's timeout that a stall of the router's own loop does not spend (`connect_within`):
the one rule of every upstream transport (lean: `_lean_transport`, aiohttp: `_aiohttp_transport`,
httpx's own: `_httpx_connect`; anyio's `fail_after` cancels a connect whose socket connected, or
whose handshake finished, while the loop was held up) and of the Redis client (`state/_resp.py`:
Redis taken for lost sends a replica to its local state).

A connect is several steps on the loop (resolve, connect, the TLS handshake, the protocol's
`connection_made`), each run as a callback. A loop held up past the connect's timeout (a long
callback, a collector pause) finds, when it wakes, both the socket connected and the timer due;
a timer that ends the connect at once fails, as CONNECT_FAILED, an upstream that answered in
time. A read has no such gap: the bytes that arrived wake it in the callback that reads them,
which the loop runs before the timers come due in the same turn."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["ConnectDeadline", "connect_within"]

T = TypeVar("T")

# How late past its time a timer may run before the loop counts as held up (stalled) meanwhile:
# a loaded loop runs timers a few milliseconds late.
_STALL_S = 0.05


class ConnectDeadline:
    """Expires `limit` (an `asyncio.timeout` entered with no deadline) `timeout_s` from now,
    but not across a stall of the loop itself: a timer that comes due later than `_STALL_S`
    past its time found the loop held up (a long callback, a collector pause), and what it
    bounds may have finished meanwhile with its callbacks not yet run (a socket connected while
    the loop was held counts as connected). It waits as long again as it was late, at most
    `timeout_s`, once, for the loop to catch up: a loop late at every round (loaded rather than
    stalled once) would otherwise stretch a connect to an upstream that never answers, grace
    after grace, to more than twice its timeout."""

    __slots__ = ("_grace", "_handle", "_limit", "_loop")

    def __init__(self, limit: asyncio.Timeout, timeout_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._limit = limit
        self._grace = timeout_s
        self._handle = self._arm(timeout_s)

    def _arm(self, delay: float) -> asyncio.TimerHandle:
        when = self._loop.time() + delay
        return self._loop.call_at(when, self._due, when)

    def _due(self, when: float) -> None:
        late = self._loop.time() - when
        if late > _STALL_S and self._grace > 0:
            extra, self._grace = min(late, self._grace), 0.0  # once: the next late timer expires
            self._handle = self._arm(extra)
        else:
            self._limit.reschedule(self._loop.time())  # expired: the limit cancels its task

    def cancel(self) -> None:
        self._handle.cancel()


async def connect_within(connecting: Awaitable[T], timeout_s: float | None) -> T:
    """`connecting` (a connect, its TLS handshake included), awaited for at most `timeout_s`
    (`ConnectDeadline`: not across a stall of the loop); TimeoutError past it. None: unbounded."""
    if timeout_s is None:
        return await connecting
    async with asyncio.timeout(None) as limit:
        deadline = ConnectDeadline(limit, timeout_s)
        try:
            return await connecting
        finally:
            deadline.cancel()
