"""Ending router calls early frees what grpc's C core allocated for them (clients/_cancelling.py).

grpc.aio frees a batch's native operations only when the coroutine awaiting it sees it complete,
so a caller cancelled in that await leaked ~1 KiB per unary call and ~100 bytes per stream read.
Measured as native bytes per ended call over a few thousand calls on a real grpc.aio server in
this process (the server's own share included), against bounds well between the two figures.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from clients import RouterClient
from tests.clients.fake_router import FakeRouter, chat_request, serving, stream_request, within
from tests.native_memory import malloc_in_use

CALLS = 2_000
WARM_UP = 300  # grpc's and the allocator's caches reach their size first
# Measured, native bytes per call: ~900 leaked per cancelled unary call, ~5 kept with the fix;
# ~95 per stream whose reading task is cancelled mid-read, ~2 per interrupted stream.
UNARY_BOUND = 300
STREAM_BOUND = 40


@pytest.fixture
async def router() -> AsyncIterator[tuple[FakeRouter, str]]:
    async with serving("a") as served:
        yield served


async def _bytes_per_call(fake: FakeRouter, end_one: Callable[[], Awaitable[None]]) -> float:
    async def one() -> None:
        fake.metadata.clear()  # the fake's record of calls grows by ~100 bytes per call
        fake.peers.clear()
        await end_one()

    for _ in range(WARM_UP):
        await one()
    before = malloc_in_use()
    for _ in range(CALLS):
        await one()
    return (malloc_in_use() - before) / CALLS


async def test_a_cancelled_caller_frees_its_unary_call(router: tuple[FakeRouter, str]) -> None:
    fake, target = router
    async with RouterClient(target) as client:

        async def cancel_one() -> None:
            fake.started.clear()
            fake.cancelled.clear()
            task = asyncio.create_task(client.chat(chat_request("hang")))
            await within(fake.started)  # the call's batch is in grpc's core
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The cancellation still reaches the router, by the time the caller sees its own.
            await within(fake.cancelled)

        per_call = await _bytes_per_call(fake, cancel_one)
    assert per_call < UNARY_BOUND, f"{per_call:.0f} native bytes kept per cancelled call"


async def test_an_interrupted_stream_frees_its_pending_read(
    router: tuple[FakeRouter, str],
) -> None:
    fake, target = router
    async with RouterClient(target) as client:

        async def interrupt_one() -> None:
            fake.cancelled.clear()
            stream = client.chat_stream(stream_request("hang"))
            assert [await anext(stream), await anext(stream)]  # the router's two chunks
            reader = asyncio.create_task(anext(stream))
            await asyncio.sleep(0)  # one loop turn: the reader is in its read
            assert stream.interrupt()  # a read was pending: it ends by itself
            with pytest.raises(StopAsyncIteration):
                await reader
            assert not reader.cancelled()
            await within(fake.cancelled)
            await stream.aclose()

        per_call = await _bytes_per_call(fake, interrupt_one)
    assert per_call < STREAM_BOUND, f"{per_call:.0f} native bytes kept per interrupted stream"


async def test_a_stream_interrupted_before_its_first_message_ends_its_read(
    router: tuple[FakeRouter, str],
) -> None:
    """The read waits for grpc.aio's task that starts the call (no headers yet); interrupting
    ends it as the stream's end all the same, and the router sees the cancellation."""
    fake, target = router
    async with RouterClient(target) as client:
        stream = client.chat_stream(stream_request("hang-first"))
        reader = asyncio.create_task(anext(stream))
        await within(fake.started)
        await asyncio.sleep(0)  # one loop turn: the reader is in its read
        assert stream.interrupt()
        with pytest.raises(StopAsyncIteration):
            await reader
        assert not reader.cancelled()
        await within(fake.cancelled)


async def test_an_interrupted_stream_with_no_read_pending_says_so(
    router: tuple[FakeRouter, str],
) -> None:
    fake, target = router
    async with RouterClient(target) as client:
        stream = client.chat_stream(stream_request("hang"))
        await anext(stream)
        assert not stream.interrupt()  # nothing to wake: a caller must stop its task itself
        await within(fake.cancelled)
        with pytest.raises(StopAsyncIteration):
            await anext(stream)
        stream.interrupt()  # idempotent


async def test_a_caller_cancelled_before_its_call_left_leaves_no_task_behind(
    router: tuple[FakeRouter, str],
) -> None:
    """Cancelled before grpc.aio's own task even started the call: the caller still gets its
    CancelledError, and that task has seen the call end by then."""
    _, target = router
    async with RouterClient(target) as client:
        task = asyncio.create_task(client.chat(chat_request("hang")))
        await asyncio.sleep(0)  # one loop turn: the caller waits, grpc's task has not run
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not [t for t in asyncio.all_tasks() if "_invoke" in repr(t.get_coro())]
        assert (await client.chat(chat_request("gpt"))).completion.model == "gpt"
