"""StreamGuard: watches an upstream stream after it started. Heartbeats while idle, a stall window,
truncation.

The guard reads the upstream in the request's own task (no task of its own: ~1 KiB an open stream
and a loop turn a chunk less), a step of the read at a time: a read that waits stays suspended on
what it waits for while the guard's timer may wake it for a heartbeat, so a heartbeat never
cancels nor loses a read. Everything that is ready at once goes out as one batch (at most
`read_ahead` chunks), and a burst costs one message downstream instead of one per chunk; nothing
is read while the caller takes a batch, so a slow caller slows the upstream read instead of
filling memory. A timer callback only wakes the guard, never raises, and nothing outlives the
stream. Chunks that are already there are taken without a timer or a task.

A transport whose reads time out by cancelling the task they run in (`transport: httpx`) would
cancel whatever the request's task does then (the caller's send of a batch): its streams are read
in a task of their own (`_stream_apart.py`). Every other read times out without cancelling its
task (the SSE reader's drain after `[DONE]` too: `providers/_deadline.py`), so a stream's tail
after every choice's finish is read like the rest, heartbeats and all, without a task.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, Generic, Protocol, TypeVar

from clients.switchboard.v1 import chat_pb2
from router_service.clock import Clock
from router_service.engine._stream_apart import ReadApart
from router_service.engine._stream_unwind import Unwinding, wake, woken
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers._base import UPSTREAM_ALIVE

Chunk = chat_pb2.ChatCompletionChunk
# What a guarded stream carries: chat chunks, or a media stream's pieces.
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Idle:
    """No chunk for a heartbeat interval: the caller should hear that we are alive. `idle_s`:
    since the caller's last message (a batch of chunks, or the heartbeat before this one)."""

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


class Parts(Protocol):
    """What of a stream is still being written: a chat stream's choices (`Choices`), a media
    stream's images. Only its tail (usage, the end) is left once none is."""

    def add(self, item: Any) -> None: ...

    def running(self) -> bool: ...


class Choices:
    """Which choices of a chat stream began and which finished: an `n: 2` stream's first finish
    is not its end while the other choice is still being written. A finished choice stays so,
    whatever chunk of its index follows (a server's trailing one)."""

    __slots__ = ("begun", "ended")

    def __init__(self, chunks: Iterable[Chunk] = ()) -> None:
        self.begun: set[int] = set()
        self.ended: set[int] = set()
        for chunk in chunks:
            self.add(chunk)

    def add(self, chunk: Chunk) -> None:
        for choice in chunk.choices:
            if choice.finish_reason or choice.finish_reason_raw:
                self.ended.add(choice.index)
            self.begun.add(choice.index)

    def running(self) -> bool:
        """Whether a choice began and did not finish."""
        return not self.begun <= self.ended


def has_finish(chunk: Chunk) -> bool:
    # A loop, not `any(...)` over a generator: asked of every chunk.
    for choice in chunk.choices:  # noqa: SIM110
        if choice.finish_reason or choice.finish_reason_raw:
            return True
    return False


_WAITING: Final = object()  # a read step that is waiting


class _End:
    """The upstream iterator is exhausted."""


@dataclass(frozen=True, slots=True)
class _Failed:
    """The upstream iterator raised: re-raised in the guard's (the request's) task."""

    error: Exception


_END: Final = _End()
# What ends a buffer (a tuple built once: `_End | _Failed` would build a union per chunk).
_MARKS: Final = (_End, _Failed)
# Chunks in one batch at most (the bound on what one message downstream carries).
READ_AHEAD = 32


class _Reader(Generic[T]):
    """Reads `chunks` in the guard's own task, one step of their `anext` at a time, as a task
    would run it: a step that waits leaves the read suspended on its future (nothing cancelled,
    nothing lost), and the guard waits for that future or its timer. Chunks that are ready are
    taken in one go, up to `capacity` (a batch); nothing is read while the caller handles a
    batch, so a slow caller slows the upstream read instead of filling memory. A cancellation
    of the task reaches the pending read, as a task's would (the read's own timeouts cancel it).
    The upstream's signs of life (UPSTREAM_ALIVE) are not batched: they set `alive`."""

    __slots__ = (
        "_blocked",
        "_capacity",
        "_chunks",
        "_ends",
        "_held",
        "_loop",
        "_read",
        "alive",
        "choices",
        "finished",
    )

    def __init__(
        self,
        chunks: AsyncIterator[T],
        capacity: int,
        ends: Callable[[T], bool],
        finished: bool,
        choices: Parts | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._chunks = chunks
        self._capacity = capacity
        self._ends = ends
        if choices is None and ends is has_finish:
            choices = Choices()  # a chat stream's
        self.choices = choices  # None: not a chat stream
        chat = isinstance(choices, Choices) and bool(choices.ended)
        self.finished = finished or chat  # a chunk that ends the stream came
        self._read: Generator[Any, None, T] | None = None  # the pending `anext`, suspended
        self._blocked: asyncio.Future[Any] | None = None  # what it waits for (None: a turn)
        self._held: object = _WAITING  # what a step outside `take` gave (the end, a chunk)
        self.alive = False  # a sign of life came since the guard last looked

    def _step(self, error: BaseException | None = None) -> object:
        """Run the read (a new one if none is pending) until it waits or ends: a chunk, the
        end, a failure, or _WAITING. A cancellation it lets through is raised."""
        read = self._read
        if read is None:
            read = self._read = self._chunks.__anext__().__await__()
        try:
            waits = read.send(None) if error is None else read.throw(error)
        except StopIteration as done:
            self._read = None
            return done.value
        except StopAsyncIteration:
            self._read = None
            return _END
        except Exception as exc:  # handed over, raised by the guard
            self._read = None
            return _Failed(exc)
        except BaseException:
            self._read = None
            raise
        if waits is not None:  # a future, as a task is given one (None: a bare yield)
            waits._asyncio_future_blocking = False
        self._blocked = waits
        return _WAITING

    def take(self) -> list[T] | _End | _Failed | None:
        """Every chunk ready now, in order (up to `capacity`); else the end or failure that
        follows them; None when nothing is ready."""
        batch: list[T] = []
        while len(batch) < self._capacity:
            item, self._held = self._held, _WAITING
            if item is _WAITING:
                blocked = self._blocked
                if self._read is not None and blocked is not None and not blocked.done():
                    break
                item = self._step()
                if item is _WAITING:
                    break
            if item is UPSTREAM_ALIVE:
                self.alive = True
            elif isinstance(item, _MARKS):
                if not batch:
                    return item
                self._held = item  # after the chunks before it
                break
            else:
                batch.append(item)  # type: ignore[arg-type]  # a chunk
                if self.choices is not None:
                    self.choices.add(item)
                if not self.finished and self._ends(item):  # type: ignore[arg-type]
                    self.finished = True
        return batch or None

    @property
    def in_tail(self) -> bool:
        """Only the stream's tail is left (usage, the end): every choice begun has finished. An
        upstream that ends before then cut the stream, whichever choice it cut."""
        return self.finished and (self.choices is None or not self.choices.running())

    async def wait(self, seconds: float) -> bool:
        """Return when the read moved on (an item or a sign of life may be ready; or only part
        of one came) or after `seconds`, whichever is first: True for the latter, a silence."""
        blocked = self._blocked
        if self._held is not _WAITING or self.alive or (blocked is not None and blocked.done()):
            return False
        if blocked is None:  # the read yielded a turn (or is to start): take it
            await asyncio.sleep(0)
            return False
        waiter = self._loop.create_future()
        callback = partial(woken, waiter)
        blocked.add_done_callback(callback)
        timer = self._loop.call_later(seconds, wake, waiter)
        try:
            await waiter
        except asyncio.CancelledError as cancel:
            # As in a task: the read is this task's, and a timeout of its own cancels the task.
            blocked.cancel()
            self._held = self._step(cancel)  # raises the cancellation if the read lets it out
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # not the read's own: the caller's
        finally:
            timer.cancel()
            blocked.remove_done_callback(callback)
        return not blocked.done()

    async def aclose(self) -> None:
        """Cancel the pending read, let it unwind, then close the upstream. Never raises the
        upstream's errors: they were handed over already."""
        read, self._read = self._read, None
        blocked, self._blocked = self._blocked, None
        if blocked is not None:
            blocked.cancel()
        await Unwinding(read, self._chunks).run()


class StreamGuard:
    """`apart`: the upstream's reads time out by cancelling their task (`transport: httpx`):
    the stream is read in a task of its own (`_stream_apart.py`); otherwise in the caller's."""

    def __init__(
        self,
        clock: Clock,
        *,
        stall_s: float,
        heartbeat_s: float,
        read_ahead: int = READ_AHEAD,
        apart: bool = False,
        quiet_s: float | None = None,
    ) -> None:
        self._clock = clock
        self._stall_s = stall_s
        self._quiet_s = quiet_s  # since the last batch, the longest signs of life stave it off
        self._heartbeat_s = heartbeat_s
        self._read_ahead = read_ahead
        self._apart = apart

    async def follow(
        self,
        chunks: AsyncIterator[T],
        *,
        finished: bool = False,
        ends: Callable[[T], bool] = has_finish,  # type: ignore[assignment]  # T is a Chunk
        choices: Parts | None = None,
    ) -> AsyncGenerator[list[T] | Idle, None]:
        """Relay `chunks` in batches (every chunk ready at once, in order, at least one), yielding
        Idle while the upstream is quiet. Raises UpstreamFailure STALLED after the stall window of
        silence and TRUNCATED when the upstream ends without a finish reason (of every choice
        begun: an `n: 2` stream's other choice cut is its held text and citations lost, never a
        whole answer; of every part of `choices`); the upstream's own
        failures are raised as they are, after the chunks before them. `finished`: a chunk already
        relayed ended the stream (`ends`: a chat chunk's finish reason by default); `choices`: what
        is still being written (`Parts`; a chat stream's: its choices). Silence is counted only
        while the guard waits for the upstream: time the caller takes to accept a batch (a slow
        reader) never counts towards the stall window. A sign of life (UPSTREAM_ALIVE: a model
        reasoning) starts the window again; the caller still hears a heartbeat each interval it was
        sent nothing, the tail after every choice's finish (usage, the end) included."""
        read = ReadApart(chunks, self._read_ahead) if self._apart else chunks
        reader: _Reader[T] = _Reader(read, self._read_ahead, ends, finished, choices)
        clock = self._clock
        try:
            # The upstream's last sign of life, the last batch relayed, the caller's last news.
            last = sent = told = clock.monotonic()
            while True:
                item = reader.take()
                if item is None:
                    idle = (now := clock.monotonic()) - last
                    if idle >= self._stall_s:
                        raise UpstreamFailure(
                            Outcome.STALLED, f"no chunk for {self._stall_s:g}s mid-stream"
                        )
                    due = self._heartbeat_s - (now - told)  # till the caller is owed a beat
                    beat = due <= self._stall_s - idle
                    silent = await reader.wait(max(due, 0.0) if beat else self._stall_s - idle)
                    item = reader.take()
                    if item is None:
                        now = clock.monotonic()  # woken early: a beat once the interval is over
                        beat = (beat and silent) or now - told >= self._heartbeat_s
                        if reader.alive:  # woken by a sign of life: nothing to relay
                            reader.alive, last = False, self._alive_until(last, now, sent)
                        if beat:  # the time since the caller's last message (the proto's)
                            told, quiet = now, now - told
                            yield Idle(quiet)
                        continue
                if isinstance(item, list):
                    yield item
                    last = sent = told = clock.monotonic()
                elif isinstance(item, _Failed):
                    raise item.error
                elif reader.in_tail:
                    return
                else:
                    raise UpstreamFailure(
                        Outcome.TRUNCATED, "upstream ended the stream without a finish reason"
                    )
        finally:
            await reader.aclose()

    def _alive_until(self, last: float, now: float, sent: float) -> float:
        """The stall window's new start at a sign of life: now, yet never later than lets it
        end past `quiet_s` after the last batch (a server's pings go on while its model is
        stuck: sse-starlette's every 15 s, whatever its generator does)."""
        if self._quiet_s is None:
            return now
        return max(last, min(now, sent + self._quiet_s - self._stall_s))
