"""Bounded: a deadline that ends the awaitable, never its task; its cleanup is its own."""

from __future__ import annotations

import asyncio
import time

import pytest

from router_service.providers._deadline import Bounded


def now() -> float:
    return asyncio.get_running_loop().time()


async def next_turn() -> None:
    """A wait on a future the loop settles at its next turn: a cleanup's real suspension (what
    a second cut would break), without waiting on wall time."""
    loop = asyncio.get_running_loop()
    turn = loop.create_future()
    loop.call_soon(turn.set_result, None)
    await turn


async def test_what_does_not_wait_is_returned_without_a_timer() -> None:
    async def ready() -> int:
        return 7

    loop = asyncio.get_running_loop()
    timers = len(loop._scheduled)  # type: ignore[attr-defined]  # the loop's pending timers
    steps = Bounded(ready(), now() + 60).__await__()
    with pytest.raises(StopIteration) as done:
        steps.send(None)
    assert done.value.value == 7
    assert len(loop._scheduled) == timers  # type: ignore[attr-defined]


async def test_past_the_deadline_the_wait_ends_not_the_task_and_its_cleanup_may_wait() -> None:
    """The awaitable is cut once, as a timeout cancels its task once: a cleanup that waits in
    turn (httpcore closes a connection so, shielded) runs to its end."""
    cleaned = asyncio.Event()

    async def upstream() -> None:
        try:
            await asyncio.Event().wait()  # a body whose end never comes
        finally:
            await asyncio.sleep(0)
            await next_turn()
            cleaned.set()

    with pytest.raises(TimeoutError):
        await Bounded(upstream(), now() + 0.001)
    assert cleaned.is_set()
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_a_deadline_that_passes_during_a_turn_cuts_the_next_step() -> None:
    steps = 0

    async def turning() -> None:
        nonlocal steps
        while True:
            steps += 1
            await asyncio.sleep(0)  # a turn of the loop, no future to cancel

    with pytest.raises(TimeoutError):
        await Bounded(turning(), now())
    assert steps >= 1


async def test_the_tasks_own_cancellation_is_raised_as_it_is() -> None:
    async def waits() -> None:
        await Bounded(asyncio.Event().wait(), now() + 60)

    task = asyncio.create_task(waits())
    await asyncio.sleep(0)  # the task waits in Bounded
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_deadline_that_passes_as_the_wait_ends_cuts_the_next_step() -> None:
    """The timer may run after the awaited future is done but before the task took it (both in
    one turn of the loop): the awaitable is still cut, at its next step, as a timeout's
    cancellation of a task in that state is; never left waiting again without a deadline."""
    loop = asyncio.get_running_loop()
    first: asyncio.Future[None] = loop.create_future()
    waited_again = False

    async def upstream() -> None:
        nonlocal waited_again
        await first  # a chunk of the body's end
        waited_again = True
        await asyncio.Event().wait()  # then silence, the connection open

    deadline = now() + 0.02
    loop.call_at(deadline - 0.01, time.sleep, 0.02)  # the loop held past the deadline: then
    loop.call_at(deadline - 0.001, first.set_result, None)  # one turn ends the wait and times it
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(1):  # the test's own bound, had the cut been lost
            await Bounded(upstream(), deadline)
    assert not waited_again


async def test_a_deadline_that_passes_as_the_task_is_cancelled_cuts_the_wait_once() -> None:
    """The task's cancellation and the deadline in one turn: the wait is cut once (by the
    task's cancellation, raised as it is), and the cleanup that waits in turn runs to its end."""
    loop = asyncio.get_running_loop()
    cleaned = False

    async def upstream() -> None:
        nonlocal cleaned
        try:
            await asyncio.Event().wait()
        finally:
            await next_turn()
            cleaned = True

    async def read(deadline: float) -> None:
        await Bounded(upstream(), deadline)

    deadline = now() + 0.02
    task = asyncio.create_task(read(deadline))
    loop.call_at(deadline - 0.01, time.sleep, 0.02)  # the loop held past the deadline: then
    loop.call_at(deadline - 0.001, task.cancel)  # one turn cancels the task and times the wait
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned
