"""Afterwork: what a call leaves to do once its answer is ready, done after it has left.

A successful attempt ends by giving its key lease back and leaving the session's active mark
(`_attempt_end.AttemptEnd`); on a shared store each is a round trip to Redis, and the caller
needs neither (its sticky choice is no afterwork: the caller's next call, on any replica, reads
it, so it is written before the answer, when it changed or is due for renewal): awaiting them before
the answer made every call through the Redis backend one round trip slower than its routing
needed (the release alone: ~0.3 ms at c=1 on loopback, a network round trip more in a real
deployment). So, on a store that waits for the network, the executor hands the attempt's exit
stack here and answers; here it closes in a task of its own.

Nothing is lost: the tasks are held until done, `drain` (the runtime's last close) waits for
them within a bound before the store closes, and a failure is logged (a lease the store never
heard released frees itself by its TTL, as after a crash). On the memory store the stack closes
inline, as before: nothing there waits, and a task would only cost; a failure there is logged
the same way, never told to a caller who already has its answer.

Failures and cancellations close their stacks inline, not here: the upstream response a stream
holds must see the exception that ended it, and the caller's error is told after the cleanup.
They close them with `close_failed` (or `FailedEnd` around a stream): a release that fails
then is logged, never told in the place of the call's own error (the upstream's 400, a 429,
the caller's cancellation), which is what the caller needs to know.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from types import TracebackType

from router_service.state import UNHURRIED, StateStore

__all__ = ["Afterwork", "FailedEnd", "close_failed"]

log = logging.getLogger("switchboard.engine")

# How long the router's shutdown waits for the last releases before closing the store.
DRAIN_TIMEOUT_S = 5.0


class Afterwork:
    """Closes successful attempts' stacks after the answer. One per runtime lineage: a
    reloaded runtime's successor takes it over with the store (calls still running on the old
    runtime hand their stacks to the same one), and its owner drains it last."""

    def __init__(self, store: StateStore) -> None:
        self._inline = store.completes_without_waiting
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        """Stacks handed over and not yet closed."""
        return len(self._pending)

    async def close(self, stack: AsyncExitStack) -> None:
        """Close `stack` now on a store that never waits; else start closing it and return."""
        if self._inline:
            try:
                await stack.aclose()
            except Exception:
                _failed()  # the caller's answer stays an answer (its status OK)
            return
        task = asyncio.get_running_loop().create_task(_close(stack))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self, timeout_s: float = DRAIN_TIMEOUT_S) -> None:
        """Wait for every stack handed over; those still open after `timeout_s` are cancelled
        (their leases free themselves by their TTL)."""
        if not self._pending:
            return
        log.info("waiting for %d finished calls to give their keys back", len(self._pending))
        _, left = await asyncio.wait(set(self._pending), timeout=timeout_s)
        if left:
            log.warning(
                "%d attempt ends (key releases) did not finish within %gs of stopping;"
                " their leases expire by their TTL",
                len(left),
                timeout_s,
            )
            for task in left:
                task.cancel()
            await asyncio.wait(left)


async def _close(stack: AsyncExitStack) -> None:
    UNHURRIED.set(True)  # this task's own context: nobody waits for these writes
    try:
        await stack.aclose()
    except Exception:
        _failed()


def _failed() -> None:
    # The answer is out: this can only be told to the log. A lease not given back expires.
    log.warning("ending a finished attempt failed (key release, session)", exc_info=True)


async def close_failed(stack: AsyncExitStack, *, finished: bool = False) -> None:
    """Close the stack of an attempt that failed (or was cancelled, or expired) while its own
    error is on its way: what the close raises is logged, never raised in its place (a
    cancellation during the close still is). `finished`: the attempt succeeded (a reported
    route), logged as `Afterwork`'s."""
    told = _cancels()
    try:
        await stack.aclose()
    except Exception:
        _failed() if finished else _failed_end()
        _still_cancelled(told)


class FailedEnd:
    """`async with FailedEnd(stack)`: the stack closes with the exception that ended the body
    (a stream's upstream response sees it), and a failure of the close is logged, not raised
    in its place. For a body that hands a success's stack over (`pop_all`) before it ends, so
    that what is left to close is a failure's; and for a Realtime session, whose caller was
    told its end before the stack closes."""

    __slots__ = ("_stack",)

    def __init__(self, stack: AsyncExitStack) -> None:
        self._stack = stack

    async def __aenter__(self) -> AsyncExitStack:
        return self._stack

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        told = _cancels()
        try:
            return bool(await self._stack.__aexit__(exc_type, exc, tb))
        except Exception as failed:
            if failed is exc:  # the body's own error, passed through the stack
                raise
            _failed_end()
            if not isinstance(exc, asyncio.CancelledError):
                _still_cancelled(told)
            return False


def _failed_end() -> None:
    # The call's own error goes to the caller; the lease not given back expires by its TTL.
    log.warning("ending a failed attempt failed (key release, session)", exc_info=True)


def _cancels() -> int:
    """The cancellations asked of the running task so far (`Task.cancelling`)."""
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0


def _still_cancelled(told: int) -> None:
    """Raise the cancellation asked during a close whose later failure stood in its place (an
    exit stack raises the last callback's error, the cancellation of one before it as only its
    context): the task must still end cancelled, not go on (another key tried, a sweeper that
    never stops) for a caller who left."""
    if _cancels() > told:
        raise asyncio.CancelledError
