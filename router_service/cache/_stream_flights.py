"""Stream flights: identical streaming misses on one replica share one upstream stream.

The first streaming miss of a name (the leader) starts the upstream stream in a task of the
flight's own (the pump); its caller is the flight's first reader. The identical streaming
misses that arrive while it runs (the followers) are readers too: each reads the flight's
events from the first on (those already relayed are replayed from the kept ones), then live,
and ends as the stream ends (its summary, or the same mid-stream error event).

- The pump runs as long as anyone reads: a leader whose caller leaves does not end it while a
  follower reads (the follower completes, and the stream is still kept in the cache); when the
  last reader leaves, the pump is cancelled and the upstream call closed.
- Bounded: the events are kept while a reader still needs them, at most `max_bytes` behind the
  newest (the cache's `max_entry_bytes`). A follower that falls further behind is cut loose
  (it never holds the others back); once the first events are dropped no one joins any more.
  The leader's caller is never cut: the pump waits for it, as its own stream would.
- A stream that fails before its first chunk (a typed error, or an error event before any
  chunk) lets each follower ask upstream itself: nothing reached its caller yet.
- A follower stops at its own deadline (`Late`, on the router's clock), before its first chunk
  or after some: the leader's call may have no deadline, or a longer one. The others read on.

Each reader's stream slot (`max_concurrent_streams`) is renewed while it reads (`SlotRenewal`),
not by the pump's attempt: that one may outlive the caller that started it (the leader's caller
left) and serves followers that made no call of their own.

With `cache.coalesce: cluster` the pump's stream may be another replica's, read from its flight
log (`_cluster_stream.py`): the followers here read it through this flight all the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing

from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.clock import Clock
from router_service.engine import HoldRenewer, SlotOwner

__all__ = [
    "Cut",
    "FellBehind",
    "Late",
    "Left",
    "SlotRenewal",
    "StreamFlight",
    "StreamFlights",
    "cut_error",
]

Events = AsyncGenerator[pb.ChatStreamResponse, None]


class Cut(Exception):
    """A shared stream will not reach its end for this reader: `error` tells its caller when
    it already relayed some of it (else it asks upstream itself)."""

    def __init__(self, error: pb.StreamError) -> None:
        super().__init__(error.message)
        self.error = error


def cut_error(why: str, code: str) -> pb.StreamError:
    """The error event that ends a shared stream cut before its end (as one that broke off)."""
    return pb.StreamError(
        message=f"The stream was cut: {why}. Ask again.",
        type="server_error",
        code=code,
        outcome=routing_pb2.OUTCOME_TRUNCATED,
    )


FELL_BEHIND = cut_error(
    "it was read too slowly to keep up with the identical stream it shared", "stream_fell_behind"
)


class FellBehind(Cut):
    """A follower's next event was dropped: it read too slowly to share the stream."""

    def __init__(self) -> None:
        super().__init__(FELL_BEHIND)


class Left(Exception):
    """Every reader left: the pump was stopped before the stream's end."""


class Late(Exception):
    """A follower's own deadline passed while it waited for the shared stream's next event."""


class _Reader:
    __slots__ = ("at", "cut", "leader")

    def __init__(self, at: int, *, leader: bool) -> None:
        self.at = at  # the index of the next event it reads
        self.leader = leader
        self.cut = False


class StreamFlight:
    """One shared upstream stream: the events the pump pushed, read by every reader."""

    def __init__(self, max_bytes: int, clock: Clock) -> None:
        self._max_bytes = max_bytes
        self._clock = clock  # a follower's deadline is timed on the router's clock
        self._events: list[pb.ChatStreamResponse] = []  # from index `_base` on
        self._starts: list[int] = []  # the bytes pushed before each kept event
        self._base = 0
        self._pushed_bytes = 0
        self._readers: list[_Reader] = []
        self._ended = False
        self.failure: BaseException | None = None  # the pump's error (before any event)
        self._changed = asyncio.Event()
        self.pump: asyncio.Task[None] | None = None
        # Its pump reads another replica's stream (`coalesce: cluster`), not its leader's own
        # call: the leader too stops at its deadline then (`read`), as a follower does.
        self.afar = False

    @property
    def joinable(self) -> bool:
        """A follower can still read it from the first event."""
        return self._base == 0 and self.failure is None

    @property
    def followers(self) -> int:
        return sum(not reader.leader for reader in self._readers)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def push(self, event: pb.ChatStreamResponse) -> None:
        self._events.append(event)
        self._starts.append(self._pushed_bytes)
        self._pushed_bytes += event.ByteSize()
        self._trim()
        self._notify()

    def end(self, failure: BaseException | None = None) -> None:
        self._ended = True
        self.failure = failure
        self._notify()

    async def leader_caught_up(self) -> None:
        """Wait while the leader's caller is more than `max_bytes` behind (its own stream's
        pace, as without followers)."""
        while True:
            leader = next((r for r in self._readers if r.leader), None)
            if leader is None or self._lag(leader) <= self._max_bytes:
                return
            await self._changed.wait()

    def _lag(self, reader: _Reader) -> int:
        if reader.at >= self._base + len(self._events):
            return 0
        return self._pushed_bytes - self._starts[reader.at - self._base]

    def _trim(self) -> None:
        """Drop what every reader has read while over the bound; cut the followers that keep
        it over (never the leader)."""
        for reader in self._readers:
            if not reader.leader and self._lag(reader) > self._max_bytes:
                reader.cut = True
        self._readers = [reader for reader in self._readers if not reader.cut]
        if self._pushed_bytes - (self._starts[0] if self._starts else 0) <= self._max_bytes:
            return
        needed = min(
            (reader.at for reader in self._readers), default=self._base + len(self._events)
        )
        drop = max(0, needed - self._base)
        del self._events[:drop], self._starts[:drop]
        self._base += drop

    async def read(
        self, *, leader: bool, deadline_s: float | None = None
    ) -> AsyncGenerator[pb.ChatStreamResponse, None]:
        """The events from the first on; the pump's failure raised as it is; FellBehind for a
        follower cut loose; Late once `deadline_s` (from now; None: none) passed while it waited
        for one (a leader's only when it reads another replica's stream: `afar`; its own call
        keeps its own deadline). Leaving (closing the iterator) stops the pump if no one else
        reads."""
        until = None if deadline_s is None else self._clock.monotonic() + deadline_s
        reader = _Reader(self._base, leader=leader)
        self._readers.append(reader)
        self._notify()  # a test may wait for it (`wait_until`)
        try:
            while True:
                if reader.cut:
                    raise FellBehind
                if reader.at < self._base + len(self._events):
                    event = self._events[reader.at - self._base]
                    reader.at += 1
                    if leader:
                        self._notify()  # the pump may be waiting for the leader
                    yield event
                elif self._ended:
                    if self.failure is not None:
                        raise self.failure
                    return
                elif until is None or (leader and not self.afar):
                    await self._changed.wait()
                else:
                    await self._wait_until(until)
        finally:
            if reader in self._readers:
                self._readers.remove(reader)
            if not self._readers and self.pump is not None and not self._ended:
                self.end(Left())  # no one joins it any more
                self.pump.cancel()  # no one reads: close the upstream call
            self._notify()  # the pump may have waited for a leader that left

    def from_afar(self) -> None:
        """Its pump reads another replica's stream (`afar`): the leader's wait is timed now."""
        self.afar = True
        self._notify()

    async def _wait_until(self, until: float) -> None:
        """Wait for a change, as long as the monotonic clock is before `until` (Late after):
        timed only while it waits, not while its caller reads an event."""
        try:
            async with self._clock.timeout(until - self._clock.monotonic()):
                await self._changed.wait()
        except TimeoutError:
            raise Late from None

    @property
    def led(self) -> bool:
        """Its leader's caller still reads it."""
        return any(reader.leader for reader in self._readers)

    async def wait_until(self, test: Callable[[StreamFlight], bool]) -> None:
        """Wait until `test` holds of it: readers that came or left, events pushed (tests)."""
        while not test(self):
            await self._changed.wait()


class StreamFlights:
    """This replica's stream flights, by name."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._open: dict[str, StreamFlight] = {}

    @property
    def open(self) -> int:
        """Flights under way (tests, and a leak would show here)."""
        return len(self._open)

    def get(self, name: str) -> StreamFlight | None:
        """The flight of `name` under way, if any (joinable or not)."""
        return self._open.get(name)

    def joinable(self, name: str) -> StreamFlight | None:
        flight = self._open.get(name)
        return flight if flight is not None and flight.joinable else None

    def lead(
        self,
        name: str,
        max_bytes: int,
        pump: Callable[[StreamFlight], Awaitable[None]],
    ) -> StreamFlight | None:
        """Start the flight of `name`, its pump reading upstream; None when one is under way."""
        if name in self._open:
            return None
        flight = StreamFlight(max_bytes, self._clock)
        self._open[name] = flight

        async def pumping() -> None:
            try:
                await pump(flight)
            finally:
                if self._open.get(name) is flight:
                    del self._open[name]

        flight.pump = asyncio.create_task(pumping(), name="switchboard-stream-flight")
        return flight


class SlotRenewal:
    """Renews a reader's stream slot (`server.lease_ttl_s`) while it reads a shared stream, by
    the runtime's renewer of open streams' holds (engine/_stream_holds.py: no task per stream)."""

    __slots__ = ("renewer", "ttl_s")

    def __init__(self, renewer: HoldRenewer, ttl_s: float) -> None:
        self.renewer = renewer
        self.ttl_s = ttl_s

    def reading(self, events: Events, slot: SlotOwner | None) -> Events:
        """`events` as a caller holding `slot` reads them (as they are when it holds none)."""
        return events if slot is None else self._renewed(events, slot)

    async def _renewed(self, events: Events, slot: SlotOwner) -> Events:
        # Taken in the body: a reader closed before it began holds nothing to stop.
        hold = self.renewer.keep_slot(slot, self.ttl_s)
        try:
            async with aclosing(events):
                async for event in events:
                    yield event
                    del event  # not held while the stream waits for its next
        finally:
            await hold.stop()
