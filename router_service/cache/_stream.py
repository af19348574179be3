"""Streams and the cache: a fresh stream recorded on its way to the caller, a kept one replayed.

A stream is kept as it was relayed (its chunks and its summary), not rebuilt from a unary
answer: what a streaming caller reads (role chunk, deltas, tool-call fragments, the usage chunk
when asked for) is then the same on a HIT as it was on the MISS.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Iterator
from contextlib import aclosing

from clients.switchboard.v1 import chat_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.cache._cache import CacheLookup
from router_service.cache._stream_flights import Cut, Late, StreamFlight
from router_service.errors import DeadlineExceededError

__all__ = ["StreamRecorder", "replay", "shared_stream"]

HIT, MISS = routing_pb2.CACHE_STATUS_HIT, routing_pb2.CACHE_STATUS_MISS
Stream = AsyncGenerator[pb.ChatStreamResponse, None]
Fresh = Callable[[], Stream]


class StreamRecorder:
    """Marks a fresh stream's route events with the cache's status and records its chunks; the
    answer is complete (and kept by `finish`) once its summary passed without an error."""

    __slots__ = ("_bytes", "_chunks", "_lookup", "_summary", "_usable")

    def __init__(self, lookup: CacheLookup) -> None:
        self._lookup = lookup
        self._chunks: list[chat_pb2.ChatCompletionChunk] = []
        self._summary: pb.StreamSummary | None = None
        self._bytes = 0
        self._usable = True

    def see(self, event: pb.ChatStreamResponse) -> None:
        kind = event.WhichOneof("event")
        if kind == "route":
            self._lookup.mark(event.route)
        elif kind == "summary":
            self._lookup.mark(event.summary.route)
            self._summary = event.summary
        elif not self._usable:
            return
        elif kind == "chunk":
            self._record((event.chunk,))
        elif kind == "chunks":
            self._record(event.chunks.chunks)
        elif kind == "error":
            self._usable = False

    def _record(self, chunks: Iterable[chat_pb2.ChatCompletionChunk]) -> None:
        for chunk in chunks:
            self._bytes += chunk.ByteSize()
            self._chunks.append(chunk)
        if self._bytes > self._lookup.max_entry_bytes:  # not kept: stop holding it
            self._usable = False
            self._chunks.clear()

    async def finish(self) -> None:
        """Keep the stream if it was relayed whole."""
        if not self._usable or self._summary is None:
            return
        stream = pb.CachedStream(chunks=self._chunks, summary=self._summary)
        await self._lookup.keep(pb.CachedAnswer(stream=stream))


def replay(
    answer: pb.CachedAnswer, lookup: CacheLookup, *, batch: bool
) -> Iterator[pb.ChatStreamResponse]:
    """A kept stream's events: its route (HIT), its chunks (in one `chunks` event for a caller
    that reads batches), its summary (no time to a first token: nothing was waited for)."""
    kept = answer.stream
    summary = pb.StreamSummary()
    summary.CopyFrom(kept.summary)
    lookup.served(answer, summary.route)
    summary.ClearField("time_to_first_token_ms")
    yield pb.ChatStreamResponse(route=summary.route)
    chunks = kept.chunks
    if batch and len(chunks) > 1:
        yield pb.ChatStreamResponse(chunks=pb.ChunkBatch(chunks=chunks))
    else:
        for chunk in chunks:
            yield pb.ChatStreamResponse(chunk=chunk)
    yield pb.ChatStreamResponse(summary=summary)


def shared_stream(
    lookup: CacheLookup, fresh: Fresh, *, batch: bool
) -> AsyncGenerator[pb.ChatStreamResponse, None]:
    """A missed stream (`find` found nothing) that identical streaming misses of this replica
    share (`_stream_flights.py`): the flight under way's events (a follower: HIT), else those
    of `fresh()` (recorded and kept) read through a flight this request leads (MISS).

    Each reader's stream slot is renewed while it reads (`SlotRenewal`): the upstream call is
    the flight's, and may outlive the caller that started it, or serve others that made none."""
    flights, slots = lookup.stream_flights, lookup.slot_renewal
    if lookup.status != MISS:  # BYPASS: its own call, never shared
        return _alone(fresh)
    flight = flights.joinable(lookup.flight_name)
    if flight is not None:
        lookup.status = HIT
        # Its slot renewed while it reads the flight; by its own attempt's hold should it ask
        # upstream itself after all (`_follow`: the flight failed before its first chunk).
        # Read until its own deadline: the leader's call may have none, or a longer one.
        shared = flight.read(leader=False, deadline_s=lookup.remaining_s)
        read = slots.reading(shared, lookup.stream_slot)
        return _follow(read, lookup, fresh, batch=batch)
    flight = flights.lead(lookup.flight_name, lookup.max_entry_bytes, _pump(lookup, fresh, batch))
    if flight is None:  # one under way that cannot be joined (its first events are gone)
        return _alone(fresh)
    # The pump's attempt outlives this caller when others read on: not its slot to renew.
    # (The pump's task has not run yet: its attempt, later, finds none.)
    slot, lookup.stream_slot = lookup.stream_slot, None
    if lookup.cluster_streams is None:  # its own call's stream: no layer more per event
        return slots.reading(flight.read(leader=True), slot)
    # Its own deadline kept should the pump read another replica's stream (`StreamFlight.afar`).
    read = flight.read(leader=True, deadline_s=lookup.remaining_s)
    return slots.reading(_leading(read, lookup), slot)


async def _leading(read: Stream, lookup: CacheLookup) -> Stream:
    """The leader's read of its flight: DEADLINE_EXCEEDED when its own deadline passed as it
    waited for another replica's stream (`Late`), a MISS when it was served nothing of it."""
    relayed = False
    try:
        async with aclosing(read) as events:
            async for event in events:
                relayed = relayed or event.WhichOneof("event") != "heartbeat"
                yield event
    except (Late, asyncio.CancelledError) as left:
        raise _left(left, lookup, relayed=relayed) from None


async def _alone(fresh: Fresh) -> AsyncGenerator[pb.ChatStreamResponse, None]:
    async with aclosing(fresh()) as events:
        async for event in events:
            yield event


def _pump(
    lookup: CacheLookup, fresh: Fresh, batch: bool
) -> Callable[[StreamFlight], Awaitable[None]]:
    """What reads the stream into the flight (its task), at its leader's pace."""

    async def pump(flight: StreamFlight) -> None:
        try:
            async with aclosing(await _source(lookup, fresh, batch, flight)) as events:
                async for event in events:
                    flight.push(event)
                    await flight.leader_caught_up()
        except Exception as exc:  # the readers raise it (a follower with nothing relayed asks)
            flight.end(exc)
        else:
            flight.end()

    return pump


async def _source(lookup: CacheLookup, fresh: Fresh, batch: bool, flight: StreamFlight) -> Stream:
    """What a flight's pump reads: `fresh()`; with `coalesce: cluster` also appended to the
    cluster flight's log it leads, or the log another replica's pump appends to (a HIT; what
    a failure before the first chunk leaves is asked upstream: `_follow`)."""
    streams = lookup.cluster_streams
    if streams is None:
        return fresh()
    name = lookup.flight_name
    claim = await streams.claim(name, lookup.remaining_s)
    if claim.token is not None:
        return streams.lead(name, claim.token, lookup.remaining_s, fresh)
    if claim.left_s <= 0:  # the store cannot wake us: go alone
        return fresh()
    lookup.status = HIT
    flight.from_afar()  # its leader stops at its own deadline now, as a follower
    return _follow(streams.follow(name, claim.holder), lookup, fresh, batch=batch)


async def _follow(shared: Stream, lookup: CacheLookup, fresh: Fresh, *, batch: bool) -> Stream:
    """A shared stream's events (a flight's, another replica's log) as this request's: its
    route (HIT) held back until the first chunk, so that a stream failing before it lets this
    request ask upstream itself (MISS) unseen. Its own deadline passing while it waits (`Late`)
    ends it DEADLINE_EXCEEDED, before its first chunk (a MISS: it was served nothing) or after
    some."""
    route: pb.ChatStreamResponse | None = None
    relayed = False
    try:
        async with aclosing(shared) as events:
            async for event in events:
                kind = event.WhichOneof("event")
                if kind == "route":
                    route = pb.ChatStreamResponse()
                    route.CopyFrom(event)
                    lookup.shared(route.route)
                    continue
                if not relayed and kind in ("heartbeat", "error"):
                    if kind == "error":
                        break  # failed before its first chunk: ask upstream below
                    continue
                if not relayed and route is not None:
                    relayed = True
                    yield route
                for own in _as_own(event, lookup, batch=batch):
                    yield own
                if kind in ("summary", "error"):
                    return
    except Cut as cut:
        if relayed:  # the rest will not come: cut, as a stream that broke off
            yield pb.ChatStreamResponse(error=cut.error)
            return
    except (Late, asyncio.CancelledError) as left:
        raise _left(left, lookup, relayed=relayed) from None
    except Exception:  # the shared stream's failure: its own caller's to see
        if relayed:
            raise  # the same error the leader's caller got
    if relayed:
        return
    lookup.status = MISS  # nothing reached the caller: its own call
    async with aclosing(_alone(fresh)) as own_events:
        async for event in own_events:
            yield event


def _as_own(
    event: pb.ChatStreamResponse, lookup: CacheLookup, *, batch: bool
) -> Iterator[pb.ChatStreamResponse]:
    """One of the leader's events as this follower reads it (its summary's route a HIT, a
    batch of chunks one by one for a caller that does not read batches)."""
    kind = event.WhichOneof("event")
    if kind == "summary":
        own = pb.ChatStreamResponse()
        own.CopyFrom(event)
        lookup.shared(own.summary.route)
        yield own
    elif kind == "chunks" and not batch:
        for chunk in event.chunks.chunks:
            yield pb.ChatStreamResponse(chunk=chunk)
    else:
        yield event


def _left(
    left: Late | asyncio.CancelledError, lookup: CacheLookup, *, relayed: bool
) -> BaseException:
    """What a reader of a shared stream raises as it leaves it: DEADLINE_EXCEEDED once its own
    deadline passed (`Late`), its cancellation as it is (its caller left, gRPC's deadline).
    Served nothing of it (before its first chunk), it was a miss, as a unary follower that
    gave up or left."""
    if not relayed:
        lookup.status = MISS
    if isinstance(left, Late):
        return DeadlineExceededError(
            "The request's deadline passed while it read an identical request's stream, which "
            "it shares."
        )
    return left
