"""One upstream HTTP/1.1 connection of `LeanTransport`: an asyncio protocol with httptools' parser.

A connection carries one exchange at a time. The request goes out in one write (head and body
together when the body is bytes); the response's status and headers resolve a future, its body
arrives in a buffer the reader drains (reading pauses above `_HIGH_WATER`, so a slow stream
consumer stops the upstream's sends instead of filling memory). Every wait is bounded by a timer
of its own (`loop.call_later`), never a task: `asyncio.wait_for` creates one per call.

Errors are the httpx errors httpx's own transport raises in the same situation (the tests compare
them scenario by scenario), so `map_transport_errors` stays the one boundary.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import cast

import httptools
import httpx

__all__ = ["Http1Connection", "Origin", "bounded"]

Origin = tuple[str, str, int]  # scheme, host, port

# Buffered response bytes above which the socket stops being read until the consumer catches up.
_HIGH_WATER = 256 * 1024


class Http1Connection(asyncio.Protocol):
    def __init__(self, origin: Origin, on_lost: Callable[[Http1Connection], None]) -> None:
        self.origin = origin
        self.idle_since = 0.0
        self.reused = False
        self.counted = False  # holds one of the pool's slots (set once connected)
        self._on_lost = on_lost
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._closed = False
        self._drained: asyncio.Future[None] | None = None  # set while writing is paused
        self._reset_exchange()

    def _reset_exchange(self) -> None:
        self.status = 0
        self.reason = b""
        # (name, its lower case, value): httpx's own triples (`_lean_transport._response_headers`).
        self.headers: list[tuple[bytes, bytes, bytes]] = []
        self.encoded = False  # the response names a Content-Encoding
        self.complete = False  # the whole response arrived
        self._informational = False  # parsing a 1xx response
        self._reusable = False  # and the server keeps the connection open after it
        self._started = False  # any response byte arrived
        self._head: asyncio.Future[None] = self._loop.create_future()
        # A list: a deque's first block (~0.75 KiB) would stay with every open connection.
        self._body: list[bytes] = []
        self._buffered = 0
        self._paused = False
        self._wake: asyncio.Future[None] | None = None
        self._error: httpx.TransportError | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._started = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("unexpected protocol upgrade"))
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if not self.complete and self._error is None:
            if exc is not None:  # a reset ends no body, not even one delimited by the close
                self._error = httpx.ReadError(str(exc) or type(exc).__name__)
            elif self._head.done() and self._reads_until_close():
                self.complete = True  # a body delimited by the end of the connection
            elif self._head.done():
                self._error = httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body"
                )
            else:
                self._error = httpx.RemoteProtocolError(
                    "Server disconnected without sending a response."
                )
        self._wake_reader()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._on_lost(self)

    def pause_writing(self) -> None:
        self._drained = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    # -- httptools callbacks ---------------------------------------------------------------------

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        self.headers.append((name, lower, value))
        if lower == b"content-encoding":
            self.encoded = True

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            # Informational (103 Early Hints, an unasked 100 Continue): the final response
            # follows on the same connection; what this one said is not its head.
            self._informational = True
            self.reason, self.headers, self.encoded = b"", [], False
            return
        self.status = status
        if not self._head.done():
            self._head.set_result(None)
        # Woken here, not by a callback of `_head`'s: that would run a turn of the loop later,
        # after a read timer come due meanwhile (the loop held up as the head arrived).
        self._wake_reader()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._wake_reader()

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        # Asked now: the parser forgets once the callback returns.
        self._reusable = self._parser.should_keep_alive()
        self.complete = True
        self._wake_reader()

    # -- the exchange ----------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return not self._closed and self._transport is not None

    @property
    def answered(self) -> bool:
        """Whether any byte of the current exchange's response arrived."""
        return self._started

    @property
    def keep_alive(self) -> bool:
        """Whether the finished exchange leaves the connection reusable."""
        return self.complete and self._reusable and self.is_open

    async def send(
        self, head: bytes, body: bytes | AsyncIterator[bytes], write_s: float | None
    ) -> None:
        assert self._transport is not None
        if self._paused:  # the last body arrived whole but was left unread: read this one
            self._transport.resume_reading()
        self._reset_exchange()
        if isinstance(body, bytes):
            self._transport.write(head + body if body else head)
            await self._drain(write_s)
            return
        self._transport.write(head)
        async for part in body:  # a streamed body goes out chunked (httpx set the header)
            if part:
                self._transport.write(b"%x\r\n%b\r\n" % (len(part), part))
                await self._drain(write_s)
        self._transport.write(b"0\r\n\r\n")
        await self._drain(write_s)

    async def _drain(self, timeout_s: float | None) -> None:
        if self._closed:
            raise self._error or httpx.WriteError("connection closed while writing")
        drained = self._drained
        if drained is not None:
            await bounded(drained, timeout_s, httpx.WriteTimeout)

    async def response_head(self, read_s: float | None) -> None:
        """Wait for the status line and headers."""
        if not self._head.done():
            if self._error is not None:
                raise self._error
            wake = self._loop.create_future()
            self._wake = wake  # woken by the headers or an error (connection lost, malformed)
            await bounded(wake, read_s, httpx.ReadTimeout)
            if not self._head.done():
                raise self._error or httpx.RemoteProtocolError("no response")

    async def read_body(self, read_s: float | None) -> bytes | None:
        """The next body bytes: everything buffered, joined; None at the end of the body."""
        while not self._body:
            if self.complete:
                return None
            if self._error is not None:
                raise self._error
            wake = self._loop.create_future()
            self._wake = wake
            await bounded(wake, read_s, httpx.ReadTimeout)
        data = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body.clear()
        self._buffered = 0
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return data

    def close(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.close()
        self._closed = True

    def _reads_until_close(self) -> bool:
        names = {lower for _, lower, _ in self.headers}
        return b"content-length" not in names and b"transfer-encoding" not in names

    def _fail(self, error: httpx.TransportError) -> None:
        self._error = error
        self._wake_reader()
        self.close()

    def _wake_reader(self) -> None:
        if self._wake is not None:
            _resolve(self._wake)


async def bounded(
    waiter: asyncio.Future[None], timeout_s: float | None, error: type[httpx.TimeoutException]
) -> None:
    """Await `waiter` for at most `timeout_s`, raising `error` after that."""
    if timeout_s is None:
        await waiter
        return
    timer = asyncio.get_running_loop().call_later(timeout_s, _expire, waiter)
    try:
        await waiter
    except _Expired:
        raise error(f"timed out after {timeout_s:g} s") from None
    finally:
        timer.cancel()


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Expired(Exception):
    pass


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(_Expired())
