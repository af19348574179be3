"""`uncut`: work awaited to its end through any number of cancellations, which are told after."""

from __future__ import annotations

import asyncio

import pytest

from router_service.cancellation import uncut


async def _cancel_twice(task: asyncio.Task[object]) -> None:
    for _ in range(2):
        task.cancel()
        for _ in range(3):  # turns for the task to take it before the next one
            await asyncio.sleep(0)


async def test_work_finishes_through_two_cancellations_then_the_cancellation_is_raised() -> None:
    go, done = asyncio.Event(), []

    async def work() -> str:
        await go.wait()
        done.append("written")
        return "written"

    task = asyncio.get_running_loop().create_task(uncut(work()))
    await asyncio.sleep(0)
    await _cancel_twice(task)
    assert not task.done() and done == []
    go.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert done == ["written"]


async def test_without_a_cancellation_the_result_and_errors_are_the_work_s() -> None:
    async def fails() -> None:
        raise ValueError("store down")

    assert await uncut(asyncio.sleep(0, result=3)) == 3
    with pytest.raises(ValueError, match="store down"):
        await uncut(fails())


async def test_an_error_of_the_work_is_the_cause_of_the_cancellation_told_after() -> None:
    go = asyncio.Event()

    async def fails() -> None:
        await go.wait()
        raise ValueError("store down")

    task = asyncio.get_running_loop().create_task(uncut(fails()))
    await asyncio.sleep(0)
    await _cancel_twice(task)
    go.set()
    with pytest.raises(asyncio.CancelledError) as caught:
        await task
    chain: list[BaseException] = []
    error: BaseException | None = caught.value
    while error is not None:  # how a task re-raises its cancellation differs by version
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert any(isinstance(e, ValueError) for e in chain)
