"""Abandoning router calls whose HTTP client has gone away.

Once the body is read, the next ASGI message of a request is `http.disconnect`, sent when the
client goes. Racing a router call against it cancels the call (and, through gRPC cancellation, the
upstream request) within milliseconds, instead of when the answer is finally written to nobody.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request

from ._errors import EdgeError

__all__ = ["unless_disconnected"]

T = TypeVar("T")


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """The result of `work`, unless the client disconnects first: then `work` is cancelled.

    Call only after the request body has been read.
    """
    job = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((job, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        job.cancel()
        await asyncio.wait((job, gone))
    if job.cancelled():
        # Nobody reads this answer; it is what access logs call 499.
        raise EdgeError(499, "The client closed the request.", code="client_closed")
    return job.result()


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
