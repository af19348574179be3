"""A stream read in a task of its own, for the StreamGuard of a transport whose reads time out by
cancelling the task they run in (httpx's own, httpcore on anyio).

The guard reads a stream in the request's own task, a step of its read at a time. A read timed by
a cancel scope (anyio's `fail_after`: httpcore's on each read) cancels its task when the time is
up, wherever the task is then: while the caller sends a batch it is the send that is cancelled,
and the stream ends CANCELLED instead of timing out. (Our own reads' deadlines end the read, not
the task: the lean transport's timers, `providers/_deadline.py` for the SSE drain.) anyio also
yields a turn to the loop before each read, even of data that is there already, which stopped the
guard's batch there. Read in a task of its own, a timeout ends the read only, and the guard gets
each item whole, from a queue: what is ready at once is still one batch. The task reads at most
`capacity` items ahead of the caller, so a slow caller still slows the upstream read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Final, Generic, TypeVar

from router_service.engine._stream_unwind import closed

T = TypeVar("T")


class _Ended:
    """The stream is exhausted."""


_ENDED: Final = _Ended()


class _Raised:
    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


class ReadApart(Generic[T]):
    """`chunks`, read by a task of their own from the first `anext` on (none before)."""

    __slots__ = ("_chunks", "_queue", "_task")

    def __init__(self, chunks: AsyncIterator[T], capacity: int) -> None:
        self._chunks = chunks
        self._queue: asyncio.Queue[T | _Ended | _Raised] = asyncio.Queue(max(1, capacity))
        self._task: asyncio.Task[None] | None = None

    def __aiter__(self) -> ReadApart[T]:
        return self

    async def __anext__(self) -> T:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._read(), name="stream-read")
        # An item that is there is taken without a turn of the loop (`Queue.get` awaits nothing).
        item = await self._queue.get()
        if isinstance(item, _Raised):
            raise item.error
        if isinstance(item, _Ended):
            raise StopAsyncIteration
        return item

    async def _read(self) -> None:
        try:
            async for item in self._chunks:
                await self._queue.put(item)
                del item  # not held while the upstream is quiet
        except Exception as exc:  # handed over: raised in the caller's task
            await self._queue.put(_Raised(exc))
        else:
            await self._queue.put(_ENDED)
        finally:  # by the task that iterated them (never while it still does)
            await closed(self._chunks)

    async def aclose(self) -> None:
        """Stop the read (cancelled, as the guard's own read would be) and close `chunks`. A
        cancellation of this wait leaves the read to end, and close them, on its own."""
        task, self._task = self._task, None
        if task is None:  # never read
            await closed(self._chunks)
            return
        task.add_done_callback(_retrieved)
        task.cancel()
        await asyncio.wait([task])


def _retrieved(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # what it raised was handed over, or is moot
