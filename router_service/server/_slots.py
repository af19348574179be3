"""Slots whose number is read each time one is asked for or given back: a config reload's new
`batches.max_running` holds from then on (an `asyncio.Semaphore`'s count is fixed when it is
made). Waiters are served in arrival order."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable

__all__ = ["Slots"]


class Slots:
    """`async with slots.slot():` runs while fewer than `limit()` others hold one. `resized()`
    after the limit changed: a raised limit lets waiters in at once (a lowered one lets none in
    until enough have left; those holding one keep it)."""

    def __init__(self, limit: Callable[[], int]) -> None:
        self._limit = limit
        self.held = 0
        self._waiting: deque[asyncio.Future[None]] = deque()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self._acquire()
        try:
            yield
        finally:
            self._give_back()

    async def _acquire(self) -> None:
        if not self._waiting and self.held < self._limit():
            self.held += 1
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.cancelled():
                with contextlib.suppress(ValueError):  # `resized` may have passed it over
                    self._waiting.remove(turn)
            else:  # its slot was given as it was cancelled: for the next one
                self._give_back()
            raise

    def _give_back(self) -> None:
        self.held -= 1
        self.resized()

    def resized(self) -> None:
        """Give the slots free under the limit now to the waiters, first come first."""
        limit = self._limit()
        while self._waiting and self.held < limit:
            turn = self._waiting.popleft()
            if not turn.done():  # not one cancelled, still to leave the queue
                self.held += 1
                turn.set_result(None)
