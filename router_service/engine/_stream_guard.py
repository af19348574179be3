"""StreamGuard: watches an upstream stream after it started. Heartbeats while idle, a stall window,
truncation.

One reader task per stream (owned: cancelled and awaited when the stream ends, however it ends)
pulls the upstream into a small bounded buffer (`read_ahead` chunks); when it is full the reader
waits, so a slow caller slows the upstream read instead of filling memory. The guard hands over
everything that is ready at once, as one batch: while the caller's send of one batch is in flight
the reader parses the next chunks, and a burst costs one message downstream instead of one per
chunk. The guard's waits run inside the request's own task: a timer callback only wakes it, never
raises, and nothing outlives the stream. Chunks that are already there are taken without a timer or
a task.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from clients.switchboard.v1 import chat_pb2
from router_service.clock import Clock
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers._base import UPSTREAM_ALIVE

Chunk = chat_pb2.ChatCompletionChunk
# What a guarded stream carries: chat chunks, or a media stream's pieces.
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Idle:
    """No chunk for a heartbeat interval: the caller should hear that we are alive."""

    idle_s: float


def is_meaningful(chunk: Chunk) -> bool:
    """Whether a chunk carries something the caller would see (content, tool calls, an end).
    A role-only opening chunk does not, whatever usage it carries (servers that report usage
    on every chunk): a stall after it still fails over invisibly. A usage-only chunk does."""
    if chunk.HasField("usage") and not chunk.choices:
        return True
    for choice in chunk.choices:
        delta = choice.delta
        if (
            choice.finish_reason
            or choice.finish_reason_raw
            or delta.tool_calls
            or delta.HasField("function_call")
            or delta.HasField("refusal")
            or (delta.WhichOneof("content") == "text" and delta.text)
            or delta.WhichOneof("content") == "parts"
            or delta.extra_json
        ):
            return True
    return False


def has_finish(chunk: Chunk) -> bool:
    # A loop, not `any(...)` over a generator: asked of every chunk.
    for choice in chunk.choices:  # noqa: SIM110
        if choice.finish_reason or choice.finish_reason_raw:
            return True
    return False


class _End:
    """The upstream iterator is exhausted."""


@dataclass(frozen=True, slots=True)
class _Failed:
    """The upstream iterator raised: re-raised in the guard's (the request's) task."""

    error: Exception


_END: Final = _End()
# What ends a buffer (a tuple built once: `_End | _Failed` would build a union per chunk).
_MARKS: Final = (_End, _Failed)
# Chunks read ahead of the caller at most (the bound on what a slow caller makes us hold).
READ_AHEAD = 32


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Reader(Generic[T]):
    """A task reading `chunks` into a buffer of `capacity` items; the reader waits while it is
    full. An end or a failure is the buffer's last item. The upstream's signs of life
    (UPSTREAM_ALIVE) are not buffered: they set `alive`, for the guard."""

    __slots__ = ("_buffer", "_capacity", "_giver", "_loop", "_taker", "alive", "task")

    def __init__(self, chunks: AsyncIterator[T], capacity: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._buffer: deque[T | _End | _Failed] = deque()
        self._capacity = capacity
        self._taker: asyncio.Future[None] | None = None  # the guard, waiting for an item
        self._giver: asyncio.Future[None] | None = None  # the reader, waiting for room
        self.alive = False  # a sign of life came since the guard last looked
        self.task = self._loop.create_task(self._read(chunks))

    async def _read(self, chunks: AsyncIterator[T]) -> None:
        try:
            async for chunk in chunks:
                if chunk is UPSTREAM_ALIVE:
                    self.alive = True
                    if self._taker is not None:
                        _wake(self._taker)
                    continue
                await self._put(chunk)
                del chunk  # not held while the upstream is quiet
        except Exception as exc:  # handed over, raised in the guard's task
            await self._put(_Failed(exc))
        else:
            await self._put(_END)
        finally:
            # Closed here, in its reader's task, rather than by the garbage collector's.
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _put(self, item: T | _End | _Failed) -> None:
        if len(self._buffer) >= self._capacity:
            self._giver = self._loop.create_future()
            await self._giver
        self._buffer.append(item)
        if self._taker is not None:
            _wake(self._taker)

    def take(self) -> list[T] | _End | _Failed | None:
        """Every chunk ready now, in order (making room for more); else the end or failure that
        follows them; None when nothing is ready."""
        buffer = self._buffer
        if not buffer:
            return None
        batch: list[T] = []
        while buffer and not isinstance(buffer[0], _MARKS):
            batch.append(buffer.popleft())  # type: ignore[arg-type]  # buffer[0] is a T
        if self._giver is not None:
            _wake(self._giver)
            self._giver = None
        if batch:
            return batch
        last = buffer.popleft()
        assert isinstance(last, _MARKS)
        return last

    async def wait(self, seconds: float) -> None:
        """Return when an item or a sign of life is ready or after `seconds`, whichever is
        first."""
        if self._buffer or self.alive:
            return
        waiter = self._taker = self._loop.create_future()
        timer = self._loop.call_later(seconds, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._taker = None

    async def aclose(self) -> None:
        """Stop reading and wait until the read has unwound (the upstream is then free to close).
        Never raises the reader's errors: they were handed over already."""
        task = self.task
        if not task.done():
            task.cancel()
            await asyncio.wait((task,))
        if not task.cancelled():
            task.exception()  # retrieved: no "exception never retrieved" warning


class StreamGuard:
    def __init__(
        self, clock: Clock, *, stall_s: float, heartbeat_s: float, read_ahead: int = READ_AHEAD
    ) -> None:
        self._clock = clock
        self._stall_s = stall_s
        self._heartbeat_s = heartbeat_s
        self._read_ahead = read_ahead

    async def follow(
        self,
        chunks: AsyncIterator[T],
        *,
        finished: bool = False,
        ends: Callable[[T], bool] = has_finish,  # type: ignore[assignment]  # T is a Chunk
    ) -> AsyncGenerator[list[T] | Idle, None]:
        """Relay `chunks` in batches (every chunk ready at once, in order, at least one), yielding
        Idle while the upstream is quiet. Raises UpstreamFailure STALLED after the stall window of
        silence and TRUNCATED when the upstream ends without a finish reason; the upstream's own
        failures are raised as they are, after the chunks before them. `finished`: a chunk
        already relayed carried the finish reason; `ends`: whether an item is one that ends
        the stream (a chat chunk's finish reason by default).

        Silence is counted only while the guard waits for the upstream: time the caller takes to
        accept a batch (a slow reader) never counts towards the stall window. A sign of life
        (UPSTREAM_ALIVE: a model reasoning) starts the window again; the caller still hears a
        heartbeat each interval it was sent nothing."""
        clock = self._clock
        reader: _Reader[T] = _Reader(chunks, self._read_ahead)
        try:
            # The upstream's last sign of life, the last batch relayed, the caller's last news.
            last = sent = told = clock.monotonic()
            while True:
                item = reader.take()
                if item is None:
                    idle = clock.monotonic() - last
                    if idle >= self._stall_s:
                        raise UpstreamFailure(
                            Outcome.STALLED, f"no chunk for {self._stall_s:g}s mid-stream"
                        )
                    beat = self._heartbeat_s <= self._stall_s - idle
                    await reader.wait(self._heartbeat_s if beat else self._stall_s - idle)
                    item = reader.take()
                    if item is None:
                        now = clock.monotonic()
                        if reader.alive:  # woken by a sign of life: nothing to relay
                            reader.alive, last = False, now
                            beat = now - told >= self._heartbeat_s
                        if beat:
                            told = now
                            yield Idle(now - sent)
                        continue
                if isinstance(item, list):
                    finished = finished or any(ends(chunk) for chunk in item)
                    yield item
                    last = sent = told = clock.monotonic()
                elif isinstance(item, _Failed):
                    raise item.error
                elif finished:
                    return
                else:
                    raise UpstreamFailure(
                        Outcome.TRUNCATED, "upstream ended the stream without a finish reason"
                    )
        finally:
            await reader.aclose()
