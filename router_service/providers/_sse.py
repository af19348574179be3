"""Server-sent events from an upstream response: one parser for every adapter.

Follows the event-stream grammar of the HTML standard
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):
lines end with CRLF, LF or CR, a leading byte-order mark is dropped, `data:` lines of one event
are joined with newlines, `event:` names it, lines starting with `:` are comments, and a blank
line dispatches the event (none when its data is empty: a proxy's `data:` keep-alive). A last
event without its blank line is still dispatched when the stream ends (providers cut streams
short; the adapter decides if that is truncation). OpenAI's `data: [DONE]` sentinel ends the
iteration.

The parser works on the response's bytes (`SseDecoder.feed`, synchronous) rather than on
httpx's `aiter_lines()`: that is four async generators deep (lines, text, bytes, raw), each with
its own decoder, chunker and context manager, held for as long as a stream stays open and run
for every chunk. An event stream is UTF-8 by definition, and a line end is never part of a
multi-byte character, so complete lines can be cut from bytes; the JSON payload goes to orjson
as bytes, never decoded to a `str` first.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers._bounded_decode import too_large
from router_service.providers._deadline import Bounded
from router_service.providers._http import EVENT_BYTES, event_bytes, map_transport_errors
from router_service.providers._lean_transport import body_parts

__all__ = ["DONE", "KEEPALIVE", "SseDecoder", "SseEvent", "json_events"]

DONE = b"[DONE]"
_BOM = b"\xef\xbb\xbf"
_LINE_END = re.compile(rb"\r\n|\r|\n")
# The data of an event whose one data line is empty: "If the data buffer is an empty string, set
# the data buffer and the event type buffer to the empty string and return" (no event). Proxies
# in front of OpenAI-compatible servers send `data:` (or `data: `) alone as a keep-alive.
_EMPTY = [b""]
# What `json_events(alive=True)` yields (as the event `""`, this very object: never changed) for
# a received chunk that carried a keep-alive: a comment (OpenRouter's `: OPENROUTER PROCESSING`
# while a model queues or reasons before its first words) or an empty `data:`. The upstream's
# sign of life, which chat streams pass on as UPSTREAM_ALIVE (providers/_base.py).
KEEPALIVE: dict[str, Any] = {}

# After `[DONE]` only the stream's end is left to read. Reading it lets the connection go back to
# the pool instead of being closed (a new TCP connection per stream otherwise); an upstream that
# keeps talking or stays silent is cut off instead.
_DRAIN_READS = 16
_DRAIN_S = 0.5


@dataclass(slots=True)  # not frozen: a frozen init sets each field through object.__setattr__
class SseEvent:
    event: str  # "" when the upstream named none ("message" in the standard)
    data: bytes  # the event's data lines joined with b"\n" (UTF-8)


class SseDecoder:
    """Incremental: `feed` each received chunk, `close` at the end of the stream."""

    __slots__ = (
        "_data",
        "_event",
        "_failed",
        "_first",
        "_heard",
        "_limit",
        "_pending",
        "_pending_size",
        "_size",
        "_skip_lf",
    )

    def __init__(self, limit: int = EVENT_BYTES) -> None:
        # The most an event's data (or a line not yet ended) may hold: past it, an upstream
        # failure, before any more of it is held (`too_large`).
        self._limit = limit
        self._size = 0  # the data lines' bytes of the event being read
        self._failed: UpstreamFailure | None = None  # raised by the next call (`feed`)
        # An incomplete line, carried to the next chunks: the pieces it came in, and their bytes
        # (joined once the line ends: re-joined at each chunk, a long line cost its square).
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._skip_lf = False  # the last chunk ended in CR: an LF now belongs to it (CRLF)
        self._first = True  # the first line may carry a byte-order mark
        self._event = ""
        self._data: list[bytes] = []
        self._heard = False  # a keep-alive since `heard` was last asked

    def feed(self, chunk: bytes) -> list[SseEvent]:
        if self._failed is not None:
            raise self._failed
        if self._skip_lf and chunk:  # an empty chunk between CR and LF changes nothing
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        # Only the chunk is split: what waits holds no line end (it was split when it came).
        if b"\r" in chunk:
            self._skip_lf = chunk.endswith(b"\r")
            lines = _LINE_END.split(chunk)
        else:
            lines = chunk.split(b"\n")
        tail = lines.pop()  # b"" when the chunk ended with a line end
        if not lines:  # no line ended: the piece waits as it came, what waited not copied
            return self._wait(tail)
        if self._pending:  # the line that waited ends here: joined once, not once a chunk
            self._pending.append(lines[0])
            lines[0] = b"".join(self._pending)
        self._pending, self._pending_size = [tail] if tail else [], len(tail)
        events: list[SseEvent] = []
        try:
            self._lines(lines, events)
            if self._pending_size > self._limit:
                raise too_large("stream event", self._limit)
        except UpstreamFailure as exc:
            if not events:
                raise
            # The events before the one too large are the stream's: given first, failed after.
            self._failed, self._pending, self._data = exc, [], []
        return events

    def close(self) -> list[SseEvent]:
        """The end of the stream: a last line and a last event without their line ends count."""
        if self._failed is not None:
            raise self._failed
        events: list[SseEvent] = []
        if self._pending:
            self._lines([b"".join(self._pending)], events)
            self._pending, self._pending_size = [], 0
        if self._data and self._data != _EMPTY:
            events.append(SseEvent(self._event, b"\n".join(self._data)))
        self._event, self._data, self._size = "", [], 0
        return events

    def _wait(self, piece: bytes) -> list[SseEvent]:
        """Hold `piece` of a line not ended yet, failing before more than the bound is held."""
        if piece:
            self._pending_size += len(piece)
            if self._pending_size > self._limit:
                raise too_large("stream event", self._limit)
            self._pending.append(piece)
        return []

    def heard(self) -> bool:
        """Whether a keep-alive (a comment, an empty `data:`) came since the last call."""
        heard, self._heard = self._heard, False
        return heard

    def _lines(self, lines: list[bytes], events: list[SseEvent]) -> None:
        # One call for a chunk's lines, not one a line: an event has two (its data, a blank).
        for line in lines:
            if self._first:
                self._first = False
                line = line.removeprefix(_BOM)
            if not line:
                if self._data == _EMPTY:
                    self._heard = True
                elif self._data:
                    events.append(SseEvent(self._event, b"\n".join(self._data)))
                self._event, self._data, self._size = "", [], 0
                continue
            if line[:1] == b":":
                self._heard = True  # a comment
                continue
            field, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if field == b"data":
                self._size += len(value)
                if self._size > self._limit:
                    raise too_large("stream event", self._limit)
                self._data.append(value)
            elif field == b"event":
                self._event = value.decode("utf-8", "replace")
            elif field == b"error":
                # Not the standard's (which ignores it): llama.cpp's server (2025 builds) says a
                # failure after its 200 as `error: {...}`. Read as the event `{"error": {...}}`,
                # the wrapped error every adapter knows.
                self._size += len(value)
                if self._size > self._limit:
                    raise too_large("stream event", self._limit)
                self._data.append(b'{"error":' + value + b"}")


async def json_events(
    response: httpx.Response, *, alive: bool = False
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event name, JSON object) per event of a streaming response, until `[DONE]` or the end;
    with `alive`, ("", KEEPALIVE) first for a received chunk that carried a keep-alive.

    Transport failures are translated (the response had started: a broken connection is a
    mid-stream failure); a payload that is not a JSON object is the upstream's fault."""
    decoder = SseDecoder(event_bytes(response))
    with map_transport_errors(started=True):
        chunks = body_parts(response)
        async for chunk in chunks:
            events = decoder.feed(chunk)
            del chunk  # nor its events nor their JSON held while the stream waits for more
            if alive and decoder.heard():  # before its events: a `[DONE]` among them ends it
                yield "", KEEPALIVE
            while events:
                sse = events.pop(0)
                if sse.data.strip() == DONE:
                    await _drain(chunks)
                    return
                name, data = sse.event, _json_object(sse.data)
                del sse
                yield name, data
                del data
        for sse in decoder.close():
            if sse.data.strip() == DONE:
                return
            yield sse.event, _json_object(sse.data)


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise UpstreamFailure(Outcome.UPSTREAM_ERROR, "malformed stream event")
    return data


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    # The answer is whole at `[DONE]`: a connection cut after it only is not reused (its close
    # closes it), and fails nothing. Its deadline ends the read, never the task it runs in (the
    # request's, which may be sending the caller a heartbeat then), and costs nothing while the
    # end is there already (the usual case: it came with `[DONE]`).
    deadline = asyncio.get_running_loop().time() + _DRAIN_S
    with contextlib.suppress(StopAsyncIteration, TimeoutError, httpx.TransportError):
        for _ in range(_DRAIN_READS):
            await Bounded(anext(chunks), deadline)
