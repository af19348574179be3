"""Slots whose number is read each time one is asked for or given back: a config reload's new
`batches.max_running` holds from then on (an `asyncio.Semaphore`'s count is fixed when it is
made). Waiters are served in arrival order; one may wait only until something else ends
(`slot_unless`: a batch's completion window)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

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

    @contextlib.asynccontextmanager
    async def slot_unless(self, ended: Awaitable[None]) -> AsyncIterator[bool]:
        """As `slot`, unless `ended` comes first: then it yields False, holding none (a slot
        given at that very moment is taken)."""
        held = await self._taken_unless(ended)
        try:
            yield held
        finally:
            if held:
                self._give_back()

    async def _taken_unless(self, ended: Awaitable[None]) -> bool:
        taking = asyncio.ensure_future(self._acquire())
        ending = asyncio.ensure_future(ended)
        try:
            await asyncio.wait((taking, ending), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled as it waits: a slot it took meanwhile goes back
            if _dropped(taking, ending):
                self._give_back()
            raise
        return _dropped(taking, ending)

    async def take(self) -> None:
        """A slot, held until `give` (a holder that gives it back for a while, then takes one
        again: `_line_slots.LineSlot`)."""
        await self._acquire()

    def give(self) -> None:
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


def _dropped(taking: asyncio.Future[None], ending: asyncio.Future[None]) -> bool:
    """Stop both waits (a slot given already stays given); whether `taking` holds one. Not
    awaited: a cancel (the batch's) arriving as it awaited would leave a slot taken, held by
    nobody."""
    ending.cancel()
    if taking.done():
        return not taking.cancelled()
    taking.cancel()  # a waiter cancelled once given its slot gives it back (`_acquire`)
    return False
