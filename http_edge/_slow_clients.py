"""Slow and surplus clients: how long the edge waits for a request, and how many connections
it serves at once.

uvicorn bounds neither the time a client takes to send a request's head nor its body: a
client that sends half its headers, or declares a Content-Length and sends less, holds its
connection (a file descriptor, a parser, a task) for as long as it likes, and a thousand such
clients hold a thousand (slowloris). The edge can serve HTTPS itself, with no proxy in front to
do this, so it does it:

- `edge.header_timeout_s`, in the connection (`EdgeHttpProtocol`): from the connection's
  opening, or the end of its previous response, until the request's head is complete. A
  connection that takes longer is closed; there is no request yet to answer. (Over HTTPS the
  opening is the handshake's end; the handshake itself gets as long: `_server.EdgeServer`.)
- `edge.body_timeout_s`, in the app (`_body_deadline.BodyDeadline`): from the end of the head
  until the last byte of the body. Past it the request gets OpenAI's error JSON with 408 and
  `connection: close`, through the app's own error handling, so telemetry counts it.
- `edge.max_head_bytes` (`EdgeHttpProtocol`): a request head larger gets 431 with OpenAI's
  error JSON and a close, as soon as it is known to be, whether it ever ends or not.
- `edge.max_pipelined` (`EdgeHttpProtocol`): the requests a connection reads ahead of the one being
  answered; past them it reads no further, and closes after answering them.
- `edge.max_connections` (`EdgeHttpProtocol`): a request on a connection beyond it gets 503
  with OpenAI's error JSON (uvicorn's own `limit_concurrency` answers in plain text).

The same protocol class holds each response's head until its first body bytes (`_one_write`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import httptools
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ._cors import RawHeaders, RefusalCors, url_path
from ._errors import error_body
from ._json import dumps
from ._lean_connection import Pipeline, lean_event
from ._one_write import HeadHeld
from ._request_id import fresh_request_id, request_id

__all__ = ["BODY_COMPLETE", "CONNECTION", "EdgeHttpProtocol", "edge_protocol"]

# Set on a request's scope by `EdgeHttpProtocol` once its body is read whole: an OpenAI call's
# JSON usually arrives with its head, and then `BodyDeadline` has nothing to time.
BODY_COMPLETE = "switchboard.body_complete"
# Set on every request's scope by `EdgeHttpProtocol`: the connection, to be told when the client
# goes (`EdgeHttpProtocol.watch_departure`; http_edge/_disconnect.py).
CONNECTION = "switchboard.connection"

log = logging.getLogger("http_edge")

# The largest request head (its request line and headers) the edge reads, by default
# (`edge.max_head_bytes`): past it, 431 and a close. uvicorn sets no limit, and httptools holds
# a head whole however long it grows.
MAX_HEAD_BYTES = 64 * 1024
# The most one read of a connection brings (asyncio's and uvloop's: 256 KiB). A head is counted by
# the reads it came in: its first one may also hold the end of the previous request.
_ONE_READ = 256 * 1024
# The most requests a connection reads ahead of the one being answered (HTTP/1.1's pipelining),
# by default (`edge.max_pipelined`): past it, the edge reads no further, answers those it read,
# and closes the connection after the last (the client retries the rest, as HTTP asks of a
# pipelining client). Each one read ahead holds its scope and cycle (~2 KiB), and uvicorn reads
# on after each answer: a client sending faster than it is answered made a thousand a second.
MAX_PIPELINED = 16
# `_refusal` when the parser stopped at a request past MAX_PIPELINED: nothing is answered to it.
_UNANSWERED = (0, "", "")


class EdgeHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header timeout and a connection cap; a subclass per
    set of settings (`edge_protocol`), as uvicorn makes its protocols from a class."""

    header_timeout_s: float = 10.0
    # The rest of a body the app answered without reading (`BodyDeadline` times one it reads).
    body_timeout_s: float = 30.0
    max_connections: int | None = None
    max_head_bytes: int = MAX_HEAD_BYTES
    max_pipelined: int = MAX_PIPELINED
    # The CORS headers of the refusals written here, as the app's answers have them.
    cors: RefusalCors | None = None
    # Slots: uvicorn's protocol keeps ~30 attributes in its `__dict__`, about as many as CPython
    # shares between instances; two more there grew every connection's dict (~1.6 KiB an idle
    # stream by tracemalloc, benchmarks/README.md, "One process").
    __slots__ = ("_departed", "_head_bytes", "_header_timer", "_held", "_in_head", "_refusal")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._header_timer: asyncio.TimerHandle | None = None
        # The bytes of the reads the current head came in (its first one whole: at most one
        # read more than the head), and whether a head is being read.
        self._head_bytes = 0
        self._in_head = False
        # Why the parser was stopped (`_Refused`), when it was on purpose: what to answer.
        self._refusal: tuple[int, str, str] | None = None
        self._held: HeadHeld | None = None  # the latest request's head hold (`_one_write`)
        self._departed: Callable[[], None] | None = None  # told when the connection is lost
        super().__init__(*args, **kwargs)
        self.pipeline = Pipeline()  # type: ignore[assignment]  # what uvicorn uses of a deque

    def watch_departure(self, callback: Callable[[], None]) -> Callable[[], object]:
        """Call `callback` (once, from the loop's callback, never raising) when the connection
        is lost, until the returned stop is called: a callback instead of a task waiting on the
        request's `receive` for `http.disconnect` (~1.5 KiB an open stream). One at a time:
        a request's watches follow each other (its head's read, then its events). A client
        already gone (it left before the watch began) is told of at the loop's next turn, as
        `receive` would have answered `http.disconnect` at once."""
        if self.transport.is_closing():
            return self.loop.call_soon(callback).cancel
        self._departed = callback
        # Read on, as `receive` does: uvicorn stops reading while over 64 KiB of body wait for
        # the app, and a connection not read never sees its client's end.
        self.flow.resume_reading()
        return partial(self.unwatch_departure, callback)

    def unwatch_departure(self, callback: Callable[[], None]) -> None:
        if self._departed is callback:  # not a later (pipelined) request's
            self._departed = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        lean_event(self.flow._is_writable_event)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        departed, self._departed = self._departed, None
        super().connection_lost(exc)
        if departed is not None:
            departed()

    def shutdown(self) -> None:
        """uvicorn's stop: an idle connection is closed, one answering closes after. Over TLS
        a close waits for the client's close_notify (30 s), which a client that reads nothing
        while idle (a synchronous SDK's pooled connection) never sends: the stop waited for it,
        its whole grace. Closed with everything written, it is not waited for."""
        super().shutdown()
        if self.transport.is_closing() and not self.transport.get_write_buffer_size():
            self.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            # Refused, lingering (`_linger`): what follows is dropped, and uvicorn's keep-alive
            # timer (armed after the answer) is not what ends a client still sending.
            self._unset_keepalive_if_required()
            return
        self._head_bytes = self._head_bytes + len(data) if self._in_head else len(data)
        self._feed(data)
        # Still in the head, past the limit even without the first read: it is too large
        # (unless this read also broke it: the parser's 400 ended the connection).
        if (
            self._in_head
            and self._refusal is None
            and self._head_bytes > self.max_head_bytes + _ONE_READ
        ):
            self._in_head = False
            self._answer_and_close(*self._head_too_large())

    def _feed(self, data: bytes) -> None:
        """uvicorn's `data_received` without its warning ("Invalid HTTP request received.") at
        each request it cannot read: the refusal logs a line of its own (`_answer_and_close`)."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.send_400_response("Invalid HTTP request received.")
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._disarm()
        self._in_head = False
        if self._head_bytes > self.max_head_bytes:
            if _head_size(self.url, self.headers) > self.max_head_bytes:
                self._refuse(self._head_too_large())
            # A head begun later in this read counts this read, not the ones before it (no
            # more than one read: all of this one, at most): else a small head pipelined
            # behind a head spanning two reads and a body was past the limit, and cut.
            self._head_bytes = min(self._head_bytes, _ONE_READ)
        if len(self.pipeline) >= self.max_pipelined:
            # This one would wait behind as many: the last read ahead is the connection's last.
            # What the client still sends is read and dropped (`data_received`): a close with
            # bytes unread would reset the connection, the answers not yet read lost with it.
            self.cycle.keep_alive = False
            self.flow.resume_reading()
            self._refuse(_UNANSWERED)
        before = self.cycle
        if self.max_connections is None or len(self.connections) <= self.max_connections:
            super().on_headers_complete()
        else:
            # uvicorn starts the request's task with `self.app`; this request gets the refusal.
            app, self.app = self.app, _over_capacity
            try:
                super().on_headers_complete()
            finally:
                self.app = app
        if self._departed is not None:
            # uvicorn stops reading at a pipelined request; the one being answered watches for
            # its client's end, which a connection not read never sees (its call ran on for
            # nobody). Reading on is bounded: past MAX_PIPELINED what comes is dropped.
            self.flow.resume_reading()
        cycle = self.cycle
        if cycle is not before and cycle is not None:  # a request's cycle (not an upgrade)
            # Its task has not run yet: the response's head goes through the hold.
            self._held = HeadHeld(cycle)
            lean_event(cycle.message_event)  # nothing waits on it yet: its task has not run
            # Its app has not run yet either: it finds the connection to watch for departure.
            self.scope[CONNECTION] = self  # type: ignore[literal-required]  # a server's own key

    def _head_too_large(self) -> tuple[int, str, str]:
        message = f"The request's headers are larger than the limit of {self.max_head_bytes} bytes."
        return (431, message, "header_too_large")

    def _refuse(self, refusal: tuple[int, str, str]) -> None:
        """Stop the parser at this request (from one of its callbacks); uvicorn then calls
        `send_400_response`, which answers `refusal` instead."""
        self._refusal = refusal
        raise _Refused(refusal[1])

    def send_400_response(self, msg: str) -> None:
        """A request HTTP itself cannot read (a malformed chunk size, two Content-Lengths, a
        control character in a header): uvicorn's 400, in OpenAI's error JSON, not plain text;
        or the refusal that stopped the parser (`_refuse`)."""
        if self._refusal is _UNANSWERED:
            return  # those read ahead are answered, then the connection closes
        refusal = self._refusal or (400, msg, "invalid_http_request")
        self._answer_and_close(*refusal)

    def _answer_and_close(self, status: int, message: str, code: str) -> None:
        self._refusal = (status, message, code)  # nothing more is read from the connection
        log.info("refused a request with %d (%s)", status, code)
        if self._held is not None:  # a response's held head leaves before the refusal
            self._held.flush()
        body = dumps(error_body(message, "invalid_request_error", code))
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        path = url_path(getattr(self, "url", b""))  # none yet: a request line unread
        for name, value in self.cors_headers(self.headers or [], path):
            head.extend([name, b": ", value, b"\r\n"])
        head.append(b"content-type: application/json\r\nx-request-id: %s\r\n" % fresh_request_id())
        head.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join([*head, body]))
        self._linger()

    def cors_headers(self, headers: RawHeaders, path: str) -> RawHeaders:
        """The CORS headers of a refusal of a request to `path` with `headers` (none: CORS off)."""
        return [] if self.cors is None else self.cors(headers, path)

    def linger_at_close(self) -> None:
        """The current request's answer ends the connection by lingering (`_linger`), not by
        uvicorn's close at once: for an answer given before its body is read (a 408 for a body
        too slow, a 503 past `max_connections`), whose client may still be sending it (an SDK
        sends a body whole before it reads) and would lose the answer to the reset."""
        closer = _LingerAtClose(self)
        held: object = self.cycle.transport
        if isinstance(held, HeadHeld):
            held.release_to(closer)
        else:
            self.cycle.transport = closer  # type: ignore[assignment]

    def _linger(self) -> None:
        """Close once the client has had the refusal: a socket closed with bytes yet unread
        resets the connection (TCP's RST), and a client still sending (the rest of a head or a
        body) would lose the answer to the reset. So the edge ends its side (FIN), drops what
        still comes, and closes when the client does, or after `header_timeout_s`. At once when
        a response is being written (a request before this one, pipelined) or over TLS."""
        writing = self.cycle is not None and not self.cycle.response_complete
        if writing or not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self.flow.resume_reading()
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self.transport.close)

    def on_message_complete(self) -> None:
        # The scope is the running (or about to run) request's: the app sees the flag.
        self.scope[BODY_COMPLETE] = True  # type: ignore[literal-required]  # a server's own key
        super().on_message_complete()
        cycle = self.cycle  # None, or a previous request's, for a WebSocket upgrade
        answered = cycle is not None and cycle.scope is self.scope and cycle.response_complete
        if answered and not self.transport.is_closing():
            self._arm()  # the end of a body answered before it came: the next head's time

    def on_response_complete(self) -> None:
        idle = not self.pipeline  # else the next request, already read, starts now
        super().on_response_complete()
        if idle and not self.transport.is_closing():
            # A body answered before it came (a 413 on its Content-Length) is still arriving,
            # dropped: its client reads the answer once it has sent it, and a close before
            # (a reset) would lose the answer. It has the body's time, the next head its own.
            body_due = not self._in_head and not self.cycle.scope.get(BODY_COMPLETE, False)
            self._arm(self.body_timeout_s if body_due else self.header_timeout_s)

    def _arm(self, timeout_s: float | None = None) -> None:
        self._disarm()
        timeout_s = self.header_timeout_s if timeout_s is None else timeout_s
        self._header_timer = self.loop.call_later(timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            # DEBUG: a flood of these is what an attack looks like, and it must not flood the log.
            log.debug("closing a connection that sent no complete request head (or body) in time")
            self.transport.close()


class _LingerAtClose:
    """A request cycle's transport whose `close` lingers (`EdgeHttpProtocol.linger_at_close`)."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: EdgeHttpProtocol) -> None:
        self._protocol = protocol

    def write(self, data: bytes) -> None:
        self._protocol.transport.write(data)

    def writelines(self, data: Iterable[bytes]) -> None:
        self._protocol.transport.writelines(data)

    def is_closing(self) -> bool:
        return self._protocol.transport.is_closing()

    def close(self) -> None:
        protocol = self._protocol
        if protocol.transport.is_closing():
            return
        protocol._refusal = _UNANSWERED  # what still comes is dropped
        protocol._linger()


class _Refused(Exception):
    """Raised from a parser callback to stop the parser (httptools has no other way)."""


def _head_size(url: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """A head's size, near enough: its target and its headers' names and values."""
    return len(url) + sum(len(name) + len(value) for name, value in headers)


def edge_protocol(
    header_timeout_s: float,
    max_connections: int | None,
    body_timeout_s: float = 30.0,
    max_head_bytes: int = MAX_HEAD_BYTES,
    max_pipelined: int = MAX_PIPELINED,
    cors: RefusalCors | None = None,
) -> type[EdgeHttpProtocol]:
    """The protocol class for uvicorn's `http` setting, with these limits."""
    limits = {
        "header_timeout_s": header_timeout_s,
        "max_connections": max_connections,
        "body_timeout_s": body_timeout_s,
        "max_head_bytes": max_head_bytes,
        "max_pipelined": max_pipelined,
        "cors": staticmethod(cors) if cors is not None else None,
    }
    return type("EdgeHttpProtocol", (EdgeHttpProtocol,), limits)


_OVER_CAPACITY = dumps(
    error_body(
        "The edge is serving as many connections as it is configured to; retry shortly.",
        "server_error",
        "server_overloaded",
    )
)


async def _over_capacity(scope: Scope, receive: Receive, send: Send) -> None:
    connection = scope[CONNECTION]  # a server's own key
    connection.linger_at_close()
    log.warning("edge.max_connections reached: a request refused with 503")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(_OVER_CAPACITY)).encode()),
        (b"retry-after", b"1"),
        (b"connection", b"close"),
        (b"x-request-id", request_id(scope)),
        *connection.cors_headers(scope["headers"], scope["path"]),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": _OVER_CAPACITY})
