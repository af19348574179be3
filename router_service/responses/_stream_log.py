"""The events of a streamed background response (`background` with `stream`), kept in the state
store so that any replica replays them (`GET /v1/responses/{id}?stream=true&starting_after=N`).

One log per response (`bg-events:{client}:{id}`, `state/_log.py`), one JSON event a line, in
sequence order: the runner appends each chunk's events in one atomic step and wakes the readers,
so a follower reads again only when there is something new, and only what is new: no polling.
A follower that cannot hear landings (no subscriber could be made) reads again every `CHECK_S`.

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
from router_service.state import (
    DROPPED,
    READ_BYTES,
    DocumentLines,
    Landing,
    LogWriter,
    StateStore,
)

__all__ = ["CHECK_S", "READ_BYTES", "StreamLog", "StreamWriter"]

CHECK_S = 1.0  # how often a follower that hears no landings reads again
# The events that end a Responses stream.
_LAST = frozenset(
    {"response.completed", "response.incomplete", "response.failed", "response.cancelled"}
)
Event = dict[str, Any]


def _name(client: str, response_id: str) -> str:
    return "bg-events:" + response_name(client, response_id)


class StreamWriter(LogWriter):
    """The runner's side: appends one response's events, within the bounds."""

    def __init__(self, store: StateStore, name: str, config: ResponsesConfig) -> None:
        super().__init__(
            store, name, max_lines=config.max_stream_events, max_bytes=config.max_stream_bytes
        )

    async def add(self, events: list[Event]) -> None:
        """Append `events` and wake the followers (nothing once stopped)."""
        data = b"".join(orjson.dumps(event) + b"\n" for event in events)
        await self.append(data, len(events))


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
            lines = DocumentLines(self._store, name)
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
                    if line == DROPPED:
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
