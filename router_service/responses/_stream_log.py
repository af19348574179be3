"""The events of a streamed background response (`background` with `stream`), kept in the state
store so that any replica replays them (`GET /v1/responses/{id}?stream=true&starting_after=N`).

One document per response (`bg-events:{client}:{id}`), one JSON event a line, in sequence
order: the runner appends each chunk's events in one atomic step (`StateStore.append_document`)
and then tells the readers with a flight landing on the same name (`land_flight`: on Redis a
PUBLISH every replica's subscriber hears; in memory the watch is woken at once), so a follower
reads again only when there is something new, and only what is new (`StateStore.read_document`
from where it stopped): no polling. A follower that cannot hear landings (no subscriber could
be made) reads again every `CHECK_S`.

Bounded: at most `responses.max_stream_events` events and `max_stream_bytes` bytes. Past that
the runner appends one `-` line and keeps no more; a reader that reaches it is refused
(`InvalidRequestError`), never handed a stream with a hole. The document lives as long
as the response can run plus as long as it is kept once finished (`background_timeout_s` +
`store_ttl_s`), and is deleted with the response. What it holds counts towards the client's
`responses.client_stored_bytes` once the response ends (`StreamWriter.written`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import orjson

from router_service.config import ResponsesConfig
from router_service.errors import InvalidRequestError
from router_service.responses._stored import response_name
from router_service.state import AppendResult, Landing, StateStore

__all__ = ["CHECK_S", "READ_BYTES", "StreamLog", "StreamWriter"]

CHECK_S = 1.0  # how often a follower that hears no landings reads again
# A follower reads at most this much of the events at once (then yields them, and reads on):
# what a resume from the first event of a long stream holds at a time.
READ_BYTES = 256 * 1024
_DROPPED = b"-"  # the line that says the events after it were not kept
# The events that end a Responses stream.
_LAST = frozenset(
    {"response.completed", "response.incomplete", "response.failed", "response.cancelled"}
)
Event = dict[str, Any]


def _name(client: str, response_id: str) -> str:
    return "bg-events:" + response_name(client, response_id)


class StreamWriter:
    """The runner's side: appends one response's events, within the bounds."""

    def __init__(self, store: StateStore, name: str, config: ResponsesConfig) -> None:
        self._store = store
        self._name = name
        self._config = config
        self._count = 0
        self.written = 0  # bytes appended (what the client's stored-bytes quota is charged)
        self._stopped = False  # the bound was passed, or the document is gone

    async def add(self, events: list[Event]) -> None:
        """Append `events` and wake the followers (nothing once stopped)."""
        if self._stopped or not events:
            return
        self._count += len(events)
        data = b"".join(orjson.dumps(event) + b"\n" for event in events)
        limit = self._config.max_stream_bytes
        done = AppendResult.TOO_LARGE
        if self._count <= self._config.max_stream_events:
            done = await self._store.append_document(self._name, data, max_bytes=limit)
        if done is AppendResult.APPENDED:
            self.written += len(data)
        else:
            self._stopped = True
            if done is AppendResult.TOO_LARGE:  # room is left for this line past the bound
                mark = _DROPPED + b"\n"
                await self._store.append_document(self._name, mark, max_bytes=limit + len(mark))
        await self._store.land_flight(self._name, "", Landing.KEPT)


class StreamLog:
    def __init__(self, store: StateStore, config: ResponsesConfig) -> None:
        self._store = store
        self._config = config

    async def open(self, client: str, response_id: str) -> StreamWriter:
        """Start `client`'s response's (empty) event log: it is streamed."""
        name = _name(client, response_id)
        ttl_s = self._config.background_timeout_s + self._config.store_ttl_s
        await self._store.put_document(name, b"", ttl_s)
        return StreamWriter(self._store, name, self._config)

    async def kept(self, client: str, response_id: str) -> bool:
        """Whether the response's events are kept (it was streamed, and they have not expired)."""
        # Its size alone: the events themselves (up to max_stream_bytes) are not read for this.
        return await self._store.read_document(_name(client, response_id), 0, 0) is not None

    async def forget(self, client: str, response_id: str) -> None:
        """Delete the events (the response was deleted), waking its followers to find out."""
        name = _name(client, response_id)
        if await self._store.delete_document(name):
            await self._store.land_flight(name, "", Landing.KEPT)

    async def follow(
        self, client: str, response_id: str, after: int, gone: Callable[[], Awaitable[bool]]
    ) -> AsyncGenerator[Event, None]:
        """The response's events after sequence number `after`, then the live ones as they are
        appended, until the one that ends the stream (none when it is at or before `after`).
        `gone()` is asked whenever a wait ends with nothing new, or the events are gone: True
        when no runner will append the end (its replica stopped; it raises when the response
        was deleted): then this ends without it (the caller tells how the response ended)."""
        name = _name(client, response_id)
        with self._store.watch_flight(name) as watch:
            lines = _Lines(self._store, name)
            # A resume is refused before any event; the stream from the first gets those kept,
            # then the error.
            if after >= 0 and await lines.dropped():
                raise _not_kept()
            index = -1  # the event number of the last line read (line n is event n)
            while True:
                # Asked each time: a subscriber lost meanwhile (which woke this) is made anew.
                hearing = await self._store.hear_flights()
                wait_s = self._config.background_heartbeat_s / 3 if hearing else CHECK_S
                watch.rearm()  # a landing from here on wakes the wait below
                read = await lines.more()
                if read is None:  # deleted (`gone` says so), or expired
                    await gone()
                    return
                for line in read:
                    if line == _DROPPED:
                        raise _not_kept()
                    index += 1
                    if index <= after:
                        continue
                    event: Event = orjson.loads(line)
                    yield event
                    if event["type"] in _LAST:
                        return
                if lines.behind:  # more is there already: read on, not wait
                    continue
                if read and index <= after and _ends(read[-1]):  # ended at or before `after`
                    return
                if not await watch.notified(wait_s) and await gone():
                    return


class _Lines:
    """The complete lines of a growing document, read on from where the last read stopped
    (never the whole document again on each wake: a long stream made that quadratic), at most
    READ_BYTES at a time."""

    def __init__(self, store: StateStore, name: str) -> None:
        self._store = store
        self._name = name
        self._offset = 0  # bytes read so far
        self._partial = b""  # the start of a line whose end was not read yet
        self.behind = False  # the last read stopped before the document's end

    async def more(self) -> list[bytes] | None:
        """The lines completed since the last call; None when the document is gone."""
        part = await self._store.read_document(self._name, self._offset, READ_BYTES)
        if part is None:
            return None
        self._offset += len(part.data)
        self.behind = self._offset < part.size
        *complete, self._partial = (self._partial + part.data).split(b"\n")
        return complete

    async def dropped(self) -> bool:
        """Whether the document (as it is now) ends with the mark that events were dropped."""
        mark = _DROPPED + b"\n"
        whole = await self._store.read_document(self._name, 0, 0)
        if whole is None or whole.size < len(mark):
            return False
        tail = await self._store.read_document(self._name, whole.size - len(mark), len(mark))
        return tail is not None and tail.data == mark


def _ends(line: bytes) -> bool:
    event: Event = orjson.loads(line)
    return event["type"] in _LAST


def _not_kept() -> InvalidRequestError:
    return InvalidRequestError(
        "The events of this response past the ones kept (responses.max_stream_events, "
        "max_stream_bytes) cannot be replayed: retrieve it without 'stream'.",
        param="stream",
        code="stream_not_kept",
    )
