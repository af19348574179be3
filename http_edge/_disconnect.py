"""Abandoning router calls whose HTTP client has gone away.

Once the body is read, the next ASGI message of a request is `http.disconnect`, sent when the
client goes. Racing a router call against it cancels the call (and, through gRPC cancellation, the
upstream request) within milliseconds, instead of when the answer is finally written to nobody.
A unary call is cancelled by cancelling the task awaiting it (the client frees what grpc held,
clients/_cancelling.py); a stream being read is interrupted instead, since grpc.aio leaks a read
cancelled in its await.

On the edge's own server the connection tells us when it is lost (`EdgeHttpProtocol`, a
callback); on another ASGI server a watcher task waits for `http.disconnect` (`watch_departure`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from fastapi import Request
from starlette.types import Receive, Scope

from ._errors import client_closed
from ._slow_clients import CONNECTION, EdgeHttpProtocol

__all__ = ["departure_noted", "unless_disconnected", "watch_departure"]

T = TypeVar("T")


async def unless_disconnected(
    request: Request,
    work: Coroutine[Any, Any, T],
    interrupt: Callable[[], bool] | None = None,
) -> T:
    """The result of `work`, unless the client disconnects first: then `work` is stopped (499).

    Call only after the request body has been read. On every call's path: `work` runs in this
    task; one watcher task waits for the disconnect and cancels this one (as `SSEResponse`
    does), and a cancellation of our own becomes the 499 below. No `asyncio.wait` and no task
    for `work` (their futures, callbacks and loop turns cost as much as the call's own work).
    `interrupt` (`RouterStream.interrupt`) is tried first: when it says it woke `work` (a read
    was pending), the task is not cancelled and whatever `work` then ends with (an error, or a
    result such as the stream's end) becomes the 499.
    """
    task = asyncio.current_task()
    assert task is not None
    state = {"gone": False, "finished": False, "cancelled": False}

    def on_disconnect() -> None:
        if not state["finished"]:  # after `work` finished a disconnect changes nothing here
            state["gone"] = True
            if interrupt is None or not interrupt():
                state["cancelled"] = True
                task.cancel()

    unwatch = watch_departure(request.scope, request.receive, on_disconnect)
    try:
        result = await work
    except asyncio.CancelledError:
        if not state["gone"]:
            raise  # the server shutting down, or the caller's own cancellation
        raise client_closed() from None
    except Exception:
        if state["gone"] and not state["cancelled"]:
            raise client_closed() from None  # interrupted: the end it saw is the client's going
        raise
    finally:
        state["finished"] = True
        unwatch()
        if state["cancelled"]:
            # Our own cancellation is taken back whatever `work` ended with (it may have turned
            # it into an error of its own): later awaits of this request must not inherit it.
            task.uncancel()
    if state["gone"] and not state["cancelled"]:  # interrupted: its read ended as the stream's
        raise client_closed()  # end (none was left after `starting_after`), or the read won
    return result


@contextlib.contextmanager
def departure_noted(request: Request) -> Iterator[Callable[[], bool]]:
    """Whether the client went while the block ran (the call yielded says), for work that is
    not to be stopped by its going (a background start, then cancelled: stopped halfway it
    would leave its record). Watched as `unless_disconnected` watches: the connection read
    on, so a client that pipelined a request before it went is seen going too."""
    gone = False

    def on_gone() -> None:
        nonlocal gone
        gone = True

    unwatch = watch_departure(request.scope, request.receive, on_gone)
    try:
        yield lambda: gone
    finally:
        unwatch()


def watch_departure(
    scope: Scope, receive: Receive, gone: Callable[[], None]
) -> Callable[[], object]:
    """Call `gone` once the client goes, from a loop callback; returns what stops the watch. The
    request's body must have been read. The edge's connection tells us itself; elsewhere one
    watcher task waits for `http.disconnect` (a failed `receive` means gone as well)."""
    connection = scope.get(CONNECTION)
    if isinstance(connection, EdgeHttpProtocol):
        return connection.watch_departure(gone)

    def on_done(watcher: asyncio.Task[None]) -> None:
        if not watcher.cancelled():
            watcher.exception()  # retrieved
            gone()

    watcher = asyncio.get_running_loop().create_task(_disconnected(receive))
    watcher.add_done_callback(on_done)
    return watcher.cancel


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
