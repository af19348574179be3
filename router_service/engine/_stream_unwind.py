"""Closing a stream read in the caller's own task (`StreamGuard`): the read suspended on a future
is cancelled as a task's would be and stepped until it has ended, then the upstream closed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Generator
from functools import partial
from typing import Any, Final

__all__ = ["Unwinding", "closed", "wake", "woken"]


def wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def woken(waiter: asyncio.Future[None], _: object) -> None:
    wake(waiter)  # as a future's done-callback


_DONE: Final = object()
# Unwindings a cancellation of their closer left to finish alone (held: a task needs a holder).
_LEFT: set[asyncio.Task[None]] = set()


class Unwinding:
    """A suspended read cancelled as a task's would be and run until it has ended, then the
    upstream closed. Cancelled itself (the caller's task cancelled again as it closes), it leaves
    the rest to a task of its own and raises: the read is never left half-unwound, nor the
    upstream open."""

    __slots__ = ("_chunks", "_read", "_waits")

    def __init__(self, read: Generator[Any, None, Any] | None, chunks: AsyncIterator[Any]) -> None:
        self._read, self._chunks = read, chunks
        self._waits: Any = _DONE if read is None else self._advance(asyncio.CancelledError())

    def _advance(self, error: BaseException | None = None) -> Any:
        """One step of the read: what it waits for next, or _DONE once it has ended (whatever
        it ended with: its errors were handed over already, or are moot)."""
        assert self._read is not None
        try:
            return self._read.send(None) if error is None else self._read.throw(error)
        except (StopIteration, StopAsyncIteration, Exception, asyncio.CancelledError):
            self._read.close()
            return _DONE

    async def run(self) -> None:
        try:
            while self._waits is not _DONE:  # its cleanup may wait
                await _until(self._waits)
                self._waits = self._advance()
        except asyncio.CancelledError:
            rest = asyncio.ensure_future(self.run())
            _LEFT.add(rest)
            rest.add_done_callback(_LEFT.discard)
            raise
        await closed(self._chunks)


async def closed(chunks: AsyncIterator[object]) -> None:
    """`chunks` closed, when they can be; what closing raises is moot (handed over already)."""
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


async def _until(waits: asyncio.Future[Any] | None) -> None:
    """Wait as a task would for what a read yielded: a future, or a turn of the loop (None)."""
    if waits is None:
        await asyncio.sleep(0)
    elif not waits.done():
        waits._asyncio_future_blocking = False
        waiter = asyncio.get_running_loop().create_future()
        waits.add_done_callback(partial(woken, waiter))
        await waiter
