"""StreamGuard: heartbeats while idle, stall window, truncation, and no task left behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from clients.switchboard.v1 import chat_pb2
from router_service.clock import SYSTEM_CLOCK, ManualClock
from router_service.engine import Idle, StreamGuard
from router_service.engine._stream_guard import is_meaningful
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers._base import UPSTREAM_ALIVE


def chunk(text: str = "", finish: bool = False) -> chat_pb2.ChatCompletionChunk:
    c = chat_pb2.ChatCompletionChunk(id="c1")
    choice = c.choices.add(index=0)
    choice.delta.text = text
    if finish:
        choice.finish_reason = chat_pb2.FINISH_REASON_STOP
        choice.finish_reason_raw = "stop"
    return c


async def upstream(
    items: list[chat_pb2.ChatCompletionChunk], then: asyncio.Event | None = None
) -> AsyncIterator[chat_pb2.ChatCompletionChunk]:
    for item in items:
        yield item
    if then is not None:
        await then.wait()  # silence until told otherwise


async def collect(
    guard: StreamGuard, source: AsyncIterator[chat_pb2.ChatCompletionChunk]
) -> list[object]:
    """Every item, batches flattened into their chunks."""
    items: list[object] = []
    async for item in guard.follow(source):
        items.extend(item if isinstance(item, list) else [item])
    return items


async def test_relays_a_finished_stream() -> None:
    guard = StreamGuard(SYSTEM_CLOCK, stall_s=5, heartbeat_s=5)
    items = await collect(guard, upstream([chunk("a"), chunk("b", finish=True)]))
    # Chunks only: no Idle, as the stream ends at once.
    assert [i.choices[0].delta.text for i in items] == ["a", "b"]  # type: ignore[attr-defined]


async def test_chunks_ready_together_come_as_one_batch_in_order() -> None:
    # Nothing in this upstream waits: the reader fills its buffer before the guard takes any.
    guard = StreamGuard(SYSTEM_CLOCK, stall_s=5, heartbeat_s=5, read_ahead=4)
    texts = [str(i) for i in range(10)]
    source = upstream([chunk(t, finish=t == "9") for t in texts])
    batches = [item async for item in guard.follow(source)]
    assert all(isinstance(b, list) and 1 <= len(b) <= 4 for b in batches)
    assert [c.choices[0].delta.text for b in batches if isinstance(b, list) for c in b] == texts
    assert len(batches) < len(texts)  # fewer hand-overs than chunks


async def test_heartbeats_while_idle_then_stall() -> None:
    baseline = asyncio.all_tasks()
    # The silence is counted on a clock the test moves a heartbeat per heartbeat (a real one on
    # a loaded machine could let the window pass in fewer beats); binary fractions add exactly.
    clock = ManualClock()
    guard = StreamGuard(clock, stall_s=5 / 64, heartbeat_s=1 / 64)
    seen: list[object] = []
    with pytest.raises(UpstreamFailure) as caught:
        async for item in guard.follow(upstream([chunk("a")], then=asyncio.Event())):
            seen.append(item)
            if isinstance(item, Idle):
                clock.advance(1 / 64)
    assert caught.value.outcome is Outcome.STALLED
    heartbeats = [i for i in seen if isinstance(i, Idle)]
    assert len(heartbeats) >= 3
    assert asyncio.all_tasks() == baseline  # the pending read was cancelled and awaited


async def test_heartbeat_does_not_lose_the_pending_chunk() -> None:
    release = asyncio.Event()

    async def slow() -> AsyncIterator[chat_pb2.ChatCompletionChunk]:
        yield chunk("a")
        await release.wait()
        yield chunk("b", finish=True)

    guard = StreamGuard(SYSTEM_CLOCK, stall_s=60, heartbeat_s=0.02)  # stall: a hang guard
    texts = []
    async for item in guard.follow(slow()):
        if isinstance(item, Idle):
            release.set()
        else:
            texts += [c.choices[0].delta.text for c in item]
    assert texts == ["a", "b"]


async def test_end_without_finish_reason_is_truncated() -> None:
    guard = StreamGuard(SYSTEM_CLOCK, stall_s=5, heartbeat_s=5)
    with pytest.raises(UpstreamFailure) as caught:
        await collect(guard, upstream([chunk("a"), chunk("b")]))
    assert caught.value.outcome is Outcome.TRUNCATED


async def test_closing_early_cancels_the_pending_read() -> None:
    baseline = asyncio.all_tasks()
    guard = StreamGuard(SYSTEM_CLOCK, stall_s=60, heartbeat_s=0.02)  # stall: a hang guard
    follower = guard.follow(upstream([chunk("a")], then=asyncio.Event()))
    assert not isinstance(await follower.__anext__(), Idle)
    assert isinstance(await follower.__anext__(), Idle)
    await follower.aclose()
    assert asyncio.all_tasks() == baseline


def test_usage_on_an_opening_chunk_is_not_something_the_caller_sees() -> None:
    """Streams are always asked for usage now, and some servers put it on every chunk (vLLM's
    continuous_usage_stats): a role-only chunk that carries it must not commit the stream (a
    stall after it still fails over invisibly); a usage-only chunk at the end still counts."""
    opening = chat_pb2.ChatCompletionChunk(usage=chat_pb2.Usage(prompt_tokens=3))
    opening.choices.add().delta.role = chat_pb2.ROLE_ASSISTANT
    assert not is_meaningful(opening)
    assert is_meaningful(chat_pb2.ChatCompletionChunk(usage=chat_pb2.Usage(prompt_tokens=3)))


async def test_signs_of_life_hold_off_the_stall_and_are_not_relayed() -> None:
    """An upstream at work (a model reasoning: UPSTREAM_ALIVE) is not stalled though nothing
    comes to relay for longer than the window; the caller hears heartbeats meanwhile."""
    clock = ManualClock()
    step = asyncio.Event()

    async def reasoning() -> AsyncIterator[chat_pb2.ChatCompletionChunk]:
        yield chunk("a")
        for _ in range(4):  # 4 × 4 s of reasoning: past the 10 s window, each within it
            await step.wait()
            step.clear()
            clock.advance(4)
            yield UPSTREAM_ALIVE
        await step.wait()
        yield chunk("b", finish=True)

    guard = StreamGuard(clock, stall_s=10, heartbeat_s=1 / 64)  # heartbeats on a real timer
    relayed: list[chat_pb2.ChatCompletionChunk] = []
    beats = 0
    async for item in guard.follow(reasoning()):
        if isinstance(item, Idle):
            beats += 1
            step.set()  # the upstream's next step: the guard is waiting on it
        else:
            relayed += item
    assert [c.choices[0].delta.text for c in relayed] == ["a", "b"]
    assert beats >= 5


def two_choices(first_finishes: bool) -> chat_pb2.ChatCompletionChunk:
    """A chunk of an `n: 2` stream: text for both choices, or the first's finish only."""
    c = chat_pb2.ChatCompletionChunk(id="c2")
    if first_finishes:
        c.choices.add(index=0, finish_reason=chat_pb2.FINISH_REASON_STOP, finish_reason_raw="stop")
        return c
    for index in (0, 1):
        c.choices.add(index=index).delta.text = "x"
    return c


class TickingClock(ManualClock):
    """A clock that moves a 1/64 s tick each time it is read: the guard's every look at it is
    a heartbeat interval later (binary fractions add exactly)."""

    def monotonic(self) -> float:
        self.advance(1 / 64)
        return super().monotonic()


# What came before the upstream went quiet: the first choice of an `n: 2` stream finished, the
# other still being written (a reasoning model thinking); or every choice finished, the usage and
# the end still to come.
QUIET_AFTER = {
    "another choice running": [two_choices(False), two_choices(True)],
    "the tail after the finish": [chunk("a"), chunk("b", finish=True)],
}


@pytest.mark.parametrize("before", list(QUIET_AFTER))
async def test_heartbeats_go_on_until_the_stall_window(before: str) -> None:
    """Whatever is left of the stream, a quiet upstream gets the caller heartbeats, as
    idle-timing proxies need, until the stall window."""
    guard = StreamGuard(TickingClock(), stall_s=16 / 64, heartbeat_s=1 / 64)
    source = upstream(QUIET_AFTER[before], then=asyncio.Event())
    seen: list[object] = []
    with pytest.raises(UpstreamFailure) as caught:
        async for item in guard.follow(source):
            seen.append(item)
    assert caught.value.outcome is Outcome.STALLED
    assert len([i for i in seen if isinstance(i, Idle)]) >= 3


async def test_an_end_before_every_choice_finished_is_truncated() -> None:
    """An `n: 2` stream whose upstream ends after the first choice's finish but not the
    second's is cut as a single choice's stream ending without one is: the second's held text
    and citations must not pass for a whole answer."""
    guard = StreamGuard(SYSTEM_CLOCK, stall_s=5, heartbeat_s=5)
    with pytest.raises(UpstreamFailure) as caught:
        await collect(guard, upstream([two_choices(False), two_choices(True), second_choice("y")]))
    assert caught.value.outcome is Outcome.TRUNCATED


def second_choice(text: str) -> chat_pb2.ChatCompletionChunk:
    c = chat_pb2.ChatCompletionChunk(id="c2")
    c.choices.add(index=1).delta.text = text
    return c


async def test_chunks_after_a_finish_are_still_batched() -> None:
    """What is ready at once after a choice's finish is one batch: an `n: 2` stream's other
    choice, and the tail after every finish (its usage): no task reads the tail apart."""
    guard = StreamGuard(ManualClock(), stall_s=60, heartbeat_s=15)
    rest = [second_choice(str(i)) for i in range(6)]
    last = second_choice("")
    last.choices[0].finish_reason_raw = "stop"
    usage = chat_pb2.ChatCompletionChunk(id="c2", usage=chat_pb2.Usage(total_tokens=3))
    source = upstream([two_choices(False), two_choices(True), *rest, last, usage])
    batches = [item async for item in guard.follow(source) if isinstance(item, list)]
    assert [len(batch) for batch in batches] == [10]
