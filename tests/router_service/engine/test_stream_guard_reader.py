"""StreamGuard's reader: no task of its own (the upstream is read in the caller's task), bounded
batches and nothing read while the caller takes one, the upstream's errors raised in the
caller's task, the read's own timeouts kept its own, a slow caller never mistaken for a stalled
upstream, and nothing left running however the stream ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest

from clients.switchboard.v1 import chat_pb2
from router_service.clock import SYSTEM_CLOCK, ManualClock
from router_service.engine import Idle, StreamGuard
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers._deadline import Bounded
from tests.helpers import counted_tasks, eventually

Chunk = chat_pb2.ChatCompletionChunk


def chunk(text: str = "x", finish: bool = False) -> Chunk:
    c = Chunk(id="c1")
    choice = c.choices.add(index=0)
    choice.delta.text = text
    if finish:
        choice.finish_reason = chat_pb2.FINISH_REASON_STOP
    return c


class Upstream:
    """An upstream stream that counts what was pulled from it and whether it was closed."""

    def __init__(self, count: int, *, then: BaseException | asyncio.Event | None = None) -> None:
        self.count = count
        self.then = then
        self.pulled = 0
        self.closed = False

    async def chunks(self) -> AsyncIterator[Chunk]:
        try:
            for i in range(self.count):
                self.pulled += 1
                yield chunk(str(i), finish=i == self.count - 1 and self.then is None)
            if isinstance(self.then, asyncio.Event):
                await self.then.wait()
            elif self.then is not None:
                raise self.then
        finally:
            self.closed = True


def other_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


async def spin(turns: int = 50) -> None:
    """Let every runnable task run (loop turns, no waiting on time)."""
    for _ in range(turns):
        await asyncio.sleep(0)


@pytest.mark.parametrize("read_ahead", [1, 8])
async def test_reads_nothing_past_what_the_caller_took(read_ahead: int) -> None:
    upstream = Upstream(1000)
    guard = StreamGuard(SYSTEM_CLOCK, stall_s=60, heartbeat_s=60, read_ahead=read_ahead)
    taken = 0
    async with aclosing(guard.follow(upstream.chunks())) as items:
        for _ in range(3):
            batch = await anext(items)
            assert isinstance(batch, list) and len(batch) == read_ahead  # all were ready
            taken += len(batch)
            await spin()
            # Nothing is read while the caller holds a batch.
            assert upstream.pulled == taken
    assert upstream.closed


async def test_the_reads_own_deadline_after_the_finish_is_not_the_callers_cancellation() -> None:
    """The SSE reader drains the connection after `[DONE]` under a deadline (`Bounded`), read in
    the caller's task like the rest: it expires while the caller is busy with the finish's batch
    (the read pending), and ends the read, which ends the stream; the caller is not cancelled."""
    drained = asyncio.Event()

    async def chunks() -> AsyncIterator[Chunk]:
        yield chunk("a", finish=True)
        now = asyncio.get_running_loop().time()
        with contextlib.suppress(TimeoutError):  # expires on the next loop turn
            await Bounded(asyncio.Event().wait(), now)  # an upstream that does not close
        drained.set()

    guard = StreamGuard(SYSTEM_CLOCK, stall_s=60, heartbeat_s=60)
    async with aclosing(guard.follow(chunks())) as items:
        batch = await anext(items)
        assert isinstance(batch, list) and len(batch) == 1
        await spin()  # the caller's send of the batch takes turns: the drain expires meanwhile
        assert not drained.is_set()  # the read is the guard's to step
        assert [item async for item in items] == []  # the drain timed out: the stream ended
    assert drained.is_set()
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_a_slow_caller_is_not_a_stalled_upstream() -> None:
    clock = ManualClock()
    upstream = Upstream(3)
    guard = StreamGuard(clock, stall_s=1, heartbeat_s=60)
    texts = []
    async for item in guard.follow(upstream.chunks()):
        assert isinstance(item, list)
        texts += [c.choices[0].delta.text for c in item]
        clock.advance(30)  # the caller took 30 s to accept this batch
    assert texts == ["0", "1", "2"]


async def test_the_upstreams_error_is_raised_in_the_callers_task() -> None:
    baseline = other_tasks()
    failure = UpstreamFailure(Outcome.UPSTREAM_ERROR, "wrapped error in chunk 3")
    upstream = Upstream(2, then=failure)
    guard = StreamGuard(SYSTEM_CLOCK, stall_s=60, heartbeat_s=60)
    seen = []
    with pytest.raises(UpstreamFailure) as caught:
        async for item in guard.follow(upstream.chunks()):
            assert isinstance(item, list)
            seen += item
    assert caught.value is failure
    assert len(seen) == 2  # the chunks before the failure reach the caller first
    assert upstream.closed
    assert other_tasks() == baseline


async def test_a_finished_stream_ends_and_an_unfinished_one_is_truncated() -> None:
    guard = StreamGuard(SYSTEM_CLOCK, stall_s=60, heartbeat_s=60)
    # Batches only (no Idle): nothing waits near the 60 s heartbeat.
    assert len([c async for i in guard.follow(Upstream(2).chunks()) for c in i]) == 2  # type: ignore[union-attr]
    # A finish reason relayed before the guard took over counts too.
    assert [i async for i in guard.follow(Upstream(0).chunks(), finished=True)] == []
    with pytest.raises(UpstreamFailure) as caught:
        async for _ in guard.follow(Upstream(0).chunks()):
            pass
    assert caught.value.outcome is Outcome.TRUNCATED


async def test_heartbeats_never_outnumber_the_stall_window() -> None:
    # Silence on a ManualClock, one heartbeat interval of it per heartbeat heard: the guard's
    # waits are real, its windows read the clock. Binary fractions: the window is reached
    # exactly, not a rounding short of it.
    clock = ManualClock()
    guard = StreamGuard(clock, stall_s=0.25, heartbeat_s=0.0625)
    upstream = Upstream(1, then=asyncio.Event())
    beats = 0
    with pytest.raises(UpstreamFailure) as caught:
        async for item in guard.follow(upstream.chunks()):
            if isinstance(item, Idle):
                beats += 1
                assert beats <= 4, "a heartbeat past the stall window"
                clock.advance(0.0625)
    assert caught.value.outcome is Outcome.STALLED
    assert beats == 4  # one per heartbeat interval of silence, none past the window
    assert upstream.closed  # the stalled read was cancelled: the upstream is free to close


async def test_a_cancelled_caller_leaves_nothing_running() -> None:
    baseline = other_tasks()
    upstream = Upstream(1, then=asyncio.Event())
    guard = StreamGuard(SYSTEM_CLOCK, stall_s=60, heartbeat_s=60)
    first = asyncio.Event()

    async def caller() -> None:
        async for _ in guard.follow(upstream.chunks()):
            first.set()

    task = asyncio.create_task(caller())
    await first.wait()
    await spin()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert upstream.closed
    assert other_tasks() == baseline


async def test_closing_while_the_reader_waits_for_room_leaves_nothing_running() -> None:
    baseline = other_tasks()
    upstream = Upstream(100)
    guard = StreamGuard(SYSTEM_CLOCK, stall_s=60, heartbeat_s=60)
    follower = guard.follow(upstream.chunks())
    await anext(follower)
    await spin()
    await follower.aclose()
    assert upstream.closed
    assert other_tasks() == baseline


class QuietTail(Upstream):
    """The whole answer at once, then a wait before its end (the upstream's usage still to come),
    until the caller has had a heartbeat."""

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.heard = asyncio.Event()

    async def chunks(self) -> AsyncIterator[Chunk]:
        async for item in super().chunks():
            yield item
        await self.heard.wait()


@pytest.mark.parametrize("upstream", [Upstream(500), QuietTail(500)], ids=["at once", "waits"])
async def test_no_task_per_chunk_nor_for_the_tail(upstream: Upstream) -> None:
    """The hot path: a chunk that is already there costs no task and no timer; nor does the
    stream's tail after its finish, whether it is there already or waited for (heartbeats go on
    meanwhile, in the caller's task)."""
    guard = StreamGuard(SYSTEM_CLOCK, stall_s=60, heartbeat_s=0.001)
    items = []
    with counted_tasks() as made:
        async for item in guard.follow(upstream.chunks()):
            items.append(item)
            if isinstance(item, Idle) and isinstance(upstream, QuietTail):
                upstream.heard.set()  # the tail comes once the caller had its heartbeat
    assert len([c for i in items if isinstance(i, list) for c in i]) == 500
    assert made == []
    assert any(isinstance(i, Idle) for i in items) is isinstance(upstream, QuietTail)


class SlowToClose:
    """An upstream whose cleanup waits (a connection given back over the network) until told."""

    def __init__(self) -> None:
        self.more, self.closing, self.release = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self.closed = False

    async def chunks(self) -> AsyncIterator[Chunk]:
        try:
            yield chunk("a")
            await self.more.wait()  # never set: the guard's read waits here
        finally:
            self.closing.set()
            await self.release.wait()
            self.closed = True


@pytest.mark.parametrize("apart", [False, True], ids=["own task", "apart"])
async def test_a_close_cancelled_as_it_unwinds_still_closes_the_upstream(apart: bool) -> None:
    """The caller closes the stream while a read waits, and is cancelled while that read
    unwinds (its cleanup waiting): the close raises the cancellation, and the read still ends
    and the upstream closes (not left half-unwound for the garbage collector)."""
    source = SlowToClose()
    guard = StreamGuard(ManualClock(), stall_s=60, heartbeat_s=15, apart=apart)
    follow = guard.follow(source.chunks())
    assert await anext(follow) == [chunk("a")]
    closing = asyncio.ensure_future(follow.aclose())
    await source.closing.wait()  # the read unwinds: its cleanup waits
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    source.release.set()

    async def closed() -> bool:
        return source.closed

    await eventually(closed, what="the upstream's cleanup ran to its end")
