"""Abandoning router calls whose HTTP client has gone away.

Once the body is read, the next ASGI message of a request is `http.disconnect`, sent when the
client goes. Racing a router call against it cancels the call (and, through gRPC cancellation, the
upstream request) within milliseconds, instead of when the answer is finally written to nobody.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from fastapi import Request

from ._errors import EdgeError

__all__ = ["unless_disconnected"]

T = TypeVar("T")


async def unless_disconnected(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """The result of `work`, unless the client disconnects first: then `work` is cancelled.

    Call only after the request body has been read. On every call's path: two tasks and a
    callback, no `asyncio.wait` (its futures and callback sets cost as much as the tasks).
    """
    loop = asyncio.get_running_loop()
    job = loop.create_task(work)
    gone = loop.create_task(_disconnected(request))
    gone.add_done_callback(lambda _: job.cancel())
    try:
        # Cancelling this task (the server shutting down) cancels `job` with it.
        return await job
    except asyncio.CancelledError:
        if job.cancelled() and gone.done() and not gone.cancelled():
            # Nobody reads this answer; it is what access logs call 499.
            raise EdgeError(499, "The client closed the request.", code="client_closed") from None
        raise
    finally:
        if gone.done() and not gone.cancelled():
            gone.exception()  # retrieved: a failed receive means gone, said above
        gone.cancel()


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
