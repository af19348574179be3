"""Slow and surplus clients: how long the edge waits for a request, and how many connections
it serves at once.

uvicorn bounds neither the time a client takes to send a request's head nor its body: a
client that sends half its headers, or declares a Content-Length and sends less, holds its
connection (a file descriptor, a parser, a task) for as long as it likes, and a thousand such
clients hold a thousand (slowloris). The edge can serve HTTPS itself, with no proxy in front to
do this, so it does it:

- `edge.header_timeout_s`, in the connection (`EdgeHttpProtocol`): from the connection's
  opening, or the end of its previous response, until the request's head is complete. A
  connection that takes longer is closed; there is no request yet to answer.
- `edge.body_timeout_s`, in the app (`BodyDeadline`): from the end of the head until the last
  byte of the body. Past it the request gets OpenAI's error JSON with 408 and
  `connection: close`, through the app's own error handling, so telemetry counts it.
- `edge.max_connections` (`EdgeHttpProtocol`): a request on a connection beyond it gets 503
  with OpenAI's error JSON (uvicorn's own `limit_concurrency` answers in plain text).

The same protocol class holds each response's head until its first body bytes (`_one_write`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ._errors import EdgeError, error_body
from ._json import dumps
from ._lean_connection import Pipeline, lean_event
from ._one_write import HeadHeld

__all__ = ["BODY_COMPLETE", "CONNECTION", "BodyDeadline", "EdgeHttpProtocol", "edge_protocol"]

# Set on a request's scope by `EdgeHttpProtocol` once its body is read whole: an OpenAI call's
# JSON usually arrives with its head, and then `BodyDeadline` has nothing to time.
BODY_COMPLETE = "switchboard.body_complete"
# Set on every request's scope by `EdgeHttpProtocol`: the connection, to be told when the client
# goes (`EdgeHttpProtocol.watch_departure`; http_edge/_disconnect.py).
CONNECTION = "switchboard.connection"

log = logging.getLogger("http_edge")


class EdgeHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header timeout and a connection cap; a subclass per
    set of settings (`edge_protocol`), as uvicorn makes its protocols from a class."""

    header_timeout_s: float = 10.0
    max_connections: int | None = None
    # Slots: uvicorn's protocol keeps ~30 attributes in its `__dict__`, about as many as CPython
    # shares between instances; two more there grew every connection's dict (~1.6 KiB an idle
    # stream by tracemalloc, benchmarks/README.md, "One process").
    __slots__ = ("_departed", "_header_timer", "_held")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._header_timer: asyncio.TimerHandle | None = None
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

    def on_headers_complete(self) -> None:
        self._disarm()
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
        cycle = self.cycle
        if cycle is not before and cycle is not None:  # a request's cycle (not an upgrade)
            # Its task has not run yet: the response's head goes through the hold.
            self._held = HeadHeld(cycle)
            lean_event(cycle.message_event)  # nothing waits on it yet: its task has not run
            # Its app has not run yet either: it finds the connection to watch for departure.
            self.scope[CONNECTION] = self  # type: ignore[literal-required]  # a server's own key

    def send_400_response(self, msg: str) -> None:
        """A request HTTP itself cannot read (a malformed chunk size, two Content-Lengths, a
        control character in a header): uvicorn's 400, in OpenAI's error JSON, not plain text."""
        if self._held is not None:  # a response's held head leaves before the 400
            self._held.flush()
        body = dumps(error_body(msg, "invalid_request_error", "invalid_http_request"))
        head = [STATUS_LINE[400]]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.append(b"content-type: application/json\r\n")
        head.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join([*head, body]))
        self.transport.close()

    def on_message_complete(self) -> None:
        # The scope is the running (or about to run) request's: the app sees the flag.
        self.scope[BODY_COMPLETE] = True  # type: ignore[literal-required]  # a server's own key
        super().on_message_complete()

    def on_response_complete(self) -> None:
        idle = not self.pipeline  # else the next request, already read, starts now
        super().on_response_complete()
        if idle and not self.transport.is_closing():
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            # DEBUG: a flood of these is what an attack looks like, and it must not flood the log.
            log.debug("closing a connection that sent no complete request head in time")
            self.transport.close()


def edge_protocol(header_timeout_s: float, max_connections: int | None) -> type[EdgeHttpProtocol]:
    """The protocol class for uvicorn's `http` setting, with these limits."""
    limits = {"header_timeout_s": header_timeout_s, "max_connections": max_connections}
    return type("EdgeHttpProtocol", (EdgeHttpProtocol,), limits)


_OVER_CAPACITY = dumps(
    error_body(
        "The edge is serving as many connections as it is configured to; retry shortly.",
        "server_error",
        "server_overloaded",
    )
)


async def _over_capacity(scope: Scope, receive: Receive, send: Send) -> None:
    log.warning("edge.max_connections reached: a request refused with 503")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(_OVER_CAPACITY)).encode()),
        (b"retry-after", b"1"),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": _OVER_CAPACITY})


class BodyDeadline:
    """Bounds the time a request's body takes to arrive: a `receive` past the deadline raises
    a 408 `EdgeError` (the routes render it). Once the body is complete, `receive` is the
    server's own again (a wait for the client's disconnect has no deadline)."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get(BODY_COMPLETE):
            # Read whole already (with the head, as a small JSON body is): nothing to time, and
            # a timeout per `receive` cost the edge ~3 % of its instructions a request.
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        complete = False

        async def bounded() -> Message:
            nonlocal complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise EdgeError(
                    408,
                    f"The request body did not arrive within {self.timeout_s:g} s.",
                    code="request_timeout",
                    headers={"connection": "close"},  # the rest of it is not worth waiting for
                ) from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, bounded, send)
