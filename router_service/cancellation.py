"""Work that a cancellation must not cut short: the writes that end a call (an attempt's lease
release and session writes, a stream's usage settlement and slot). Cut halfway, each leaves a
key, a stream slot or a token window wrong on every replica until a TTL ends it, and a task can
be cancelled more than once while they run (the caller leaves, then a stop cancels the calls).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["uncut"]

T = TypeVar("T")


async def uncut(work: Awaitable[T]) -> T:
    """What `work` gives, awaited to its end. A cancellation arriving meanwhile, once or many
    times, is never passed on to `work`: it is raised once `work` is done (with `work`'s own
    error, if any, as its cause). `work` runs in a task of its own unless it is a future already
    (`asyncio.gather`'s is: no task more).

    Why not `asyncio.shield` alone: the awaiting task goes on at the first cancellation while
    the work runs unowned, and whatever comes after it in that task (the next write) is skipped."""
    future = asyncio.ensure_future(work)
    cancelled: asyncio.CancelledError | None = None
    while not future.done():
        try:
            # `wait` leaves the future running when the waiting task is cancelled.
            await asyncio.wait((future,))
        except asyncio.CancelledError as exc:
            cancelled = exc
    if cancelled is None:
        return future.result()
    if not future.cancelled() and (error := future.exception()) is not None:
        raise cancelled from error
    raise cancelled
