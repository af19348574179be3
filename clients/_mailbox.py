"""What an in-process call's two sides hand each other (`_local_call.py`): a few messages and
the call's end, at the cost of a list and a future while someone waits.

asyncio's own Queue, Semaphore and Event would do, but keep four deques and an Event between
them (~4.5 KiB an idle stream, measured: benchmarks/README.md, "One process"), for one reader
and one writer that wait in turn."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["Ended", "Mailbox"]


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class Mailbox:
    """Messages in order, from one writer to one reader; `put` waits while `limit` are unread."""

    __slots__ = ("_items", "_limit", "_reader", "_writer")

    def __init__(self, limit: int = 0) -> None:
        self._items: list[Any] = []
        self._limit = limit  # 0: no bound
        self._reader: asyncio.Future[None] | None = None
        self._writer: asyncio.Future[None] | None = None

    async def put(self, item: Any) -> None:
        while self._limit and len(self._items) >= self._limit:
            self._writer = asyncio.get_running_loop().create_future()
            try:
                await self._writer
            finally:
                self._writer = None
        self.put_nowait(item)

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        _wake(self._reader)

    async def get(self) -> Any:
        while not self._items:
            self._reader = asyncio.get_running_loop().create_future()
            try:
                await self._reader
            finally:
                self._reader = None
        item = self._items.pop(0)
        _wake(self._writer)
        return item

    def clear(self) -> None:
        self._items.clear()
        _wake(self._writer)

    def __len__(self) -> int:
        return len(self._items)


class Ended:
    """Set once; any number of waiters (a call's `code()`, `trailing_metadata()`, its result)."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            _wake(waiter)

    async def wait(self) -> None:
        if self._set:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
