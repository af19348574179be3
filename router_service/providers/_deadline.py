"""A deadline that ends an awaitable, never the task it runs in.

`asyncio.timeout` cancels the task it was entered in when its time is up, wherever that task is
then. A stream's read is stepped by the StreamGuard in the request's own task, between the
caller's sends of its batches and heartbeats: a timeout entered inside that read (the SSE
reader's drain after `[DONE]`) would cancel the caller's send instead. `Bounded` passes on what
the awaitable waits for, as it is, to whichever task (or guard) runs it, and past the deadline
cancels that wait only: the awaitable ends as a cancelled read does, and `Bounded` raises
TimeoutError. Nothing is made while the awaitable never waits (no timer, no task)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Generator
from typing import Any, Generic, TypeVar

__all__ = ["Bounded"]

T = TypeVar("T")


class Bounded(Generic[T]):
    """`awaitable`, awaited until `deadline` (the loop's time) at most."""

    __slots__ = ("_awaitable", "_deadline", "_due", "_expired", "_waits")

    def __init__(self, awaitable: Awaitable[T], deadline: float) -> None:
        self._awaitable = awaitable
        self._deadline = deadline
        self._expired = False
        self._due = False  # expired while nothing was left to cancel: cut at its next step
        self._waits: asyncio.Future[Any] | None = None  # what the awaitable waits for now

    def __await__(self) -> Generator[Any, None, T]:
        steps = self._awaitable.__await__()
        timer: asyncio.TimerHandle | None = None
        error: BaseException | None = None
        try:
            while True:
                try:
                    waits = steps.send(None) if error is None else steps.throw(error)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
                except asyncio.CancelledError:
                    if self._expired and not _cancelling():
                        raise TimeoutError from None  # ours, not the task's
                    raise
                if timer is None:  # the first wait: the deadline matters from now on
                    loop = asyncio.get_running_loop()
                    timer = loop.call_at(self._deadline, self._expire)
                self._waits, error = waits, None
                try:
                    yield waits  # waited for by the task, or the guard stepping it
                except BaseException as thrown:  # the task's cancellation: the awaitable's
                    error = thrown
                else:
                    if self._due:  # it expired during a turn of the loop: cut after it
                        self._due, error = False, asyncio.CancelledError()
                finally:
                    self._waits = None
        finally:
            if timer is not None:
                timer.cancel()

    def _expire(self) -> None:
        """Cut the wait, once (as a timeout cancels its task once): what the awaitable does
        about it (its cleanup, which may wait too) is its own."""
        self._expired = True
        waits = self._waits
        # A future cancelled (here, or by the task's own cancellation already) wakes its task
        # with the cancellation, as by a timeout. One that ended otherwise in this turn of the
        # loop, not yet taken, is cut at the next step instead, as a task's cancellation would
        # be: else the awaitable could go on to wait again, with no deadline left.
        if waits is None or not (waits.cancel() or waits.cancelled()):
            self._due = True


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
