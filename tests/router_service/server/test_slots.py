"""`Slots`: as many holders as the limit says when they ask, whatever it said before."""

from __future__ import annotations

import asyncio
import contextlib

from router_service.server._slots import Slots


async def _holders(
    slots: Slots, n: int, entered: list[int] | None = None
) -> tuple[list[asyncio.Task[None]], asyncio.Event]:
    """`n` tasks that take a slot each (in this order, each noting its index in `entered` when
    it has one) and keep it until the event is set."""
    done = asyncio.Event()

    async def hold(index: int) -> None:
        async with slots.slot():
            if entered is not None:
                entered.append(index)
            await done.wait()

    tasks = [asyncio.create_task(hold(i)) for i in range(n)]
    for _ in range(3):
        await asyncio.sleep(0)  # each runs up to its slot, or to its place in the queue
    return tasks, done


async def test_a_raised_limit_lets_the_waiters_in_first_come_first() -> None:
    limit, entered = 1, list[int]()
    slots = Slots(lambda: limit)
    tasks, done = await _holders(slots, 3, entered)
    limit = 2
    slots.resized()
    await asyncio.sleep(0)
    assert entered == [0, 1] and slots.held == 2  # the second in line, not the third
    done.set()
    await asyncio.gather(*tasks)
    assert entered == [0, 1, 2] and slots.held == 0


async def test_a_lowered_limit_keeps_holders_and_lets_in_none_until_under_it() -> None:
    limit = 3
    slots = Slots(lambda: limit)
    first, release_first = await _holders(slots, 3)
    limit = 1
    later, release_later = await _holders(slots, 1)
    assert slots.held == 3  # nobody is asked to leave
    release_first.set()
    await asyncio.gather(*first)
    assert slots.held == 1  # the waiter, alone under the limit of 1
    release_later.set()
    await asyncio.gather(*later)
    assert slots.held == 0


async def test_a_waiter_cancelled_leaves_the_queue_and_one_granted_gives_its_slot_back() -> None:
    limit = 1
    slots = Slots(lambda: limit)
    tasks, done = await _holders(slots, 3)
    tasks[1].cancel()  # waiting: leaves the queue
    with contextlib.suppress(asyncio.CancelledError):
        await tasks[1]
    limit = 2
    slots.resized()  # the slot goes to the third, which is cancelled before it runs on
    assert slots.held == 2
    tasks[2].cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await tasks[2]
    assert slots.held == 1
    done.set()
    await tasks[0]
    assert slots.held == 0


async def test_a_holder_cancelled_as_its_other_wait_stops_gives_its_slot_back() -> None:
    slots = Slots(lambda: 1)
    stopping, may_stop = asyncio.Event(), asyncio.Event()

    async def window() -> None:  # slow to stop: the slot is taken while it does
        try:
            await asyncio.Event().wait()
        finally:
            stopping.set()
            await may_stop.wait()

    async def run() -> None:
        async with slots.slot_unless(window()) as held:
            assert held
            await asyncio.Event().wait()

    task = asyncio.create_task(run())
    await stopping.wait()  # it has its slot, and stops waiting for the window's end
    task.cancel()  # a cancel then (a batch cancelled) must not keep the slot
    may_stop.set()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert slots.held == 0
