"""The event loop an async client's channel serves: grpc.aio binds a channel (and
``LocalChannel`` its calls) to the loop it was made on; a call from another failed with
asyncio's "attached to a different loop" or "Event loop is closed", its grpc coroutine never
awaited."""

from __future__ import annotations

import asyncio

__all__ = ["ROTATE_ELSEWHERE", "bound_loop", "on_its_loop", "running_loop"]


# The running loop, or None outside any: asyncio's own (in `asyncio.events.__all__`), which
# `get_running_loop` wraps with an exception to catch.
running_loop = asyncio._get_running_loop


def bound_loop(bound: asyncio.AbstractEventLoop | None) -> asyncio.AbstractEventLoop | None:
    """The loop a client is bound to once used from the running one: `bound`, or the running
    loop when it had none (opened outside any); RuntimeError, before any call, from another."""
    loop = running_loop()
    if loop is bound or loop is None:
        return bound
    if bound is None:
        return loop
    raise RuntimeError(_ELSEWHERE.format(what="RouterClient", serves="its channel serves"))


def on_its_loop(loop: asyncio.AbstractEventLoop, what: str) -> None:
    """RuntimeError when the running loop is not `loop`, where `what` (a client, a stream of
    its calls) was opened: grpc.aio's objects serve only their own loop."""
    if running_loop() is not loop:
        raise RuntimeError(_ELSEWHERE.format(what=what, serves="it serves"))


_ELSEWHERE = (
    "This {what} was opened on another event loop, and {serves} only that one: make one "
    "client per event loop (each asyncio.run its own), and use its calls on that loop."
)
# `RouterClient.use_credentials` of an open client outside any event loop (a certificate
# watcher's thread): grpc.aio cannot make the new channel there.
ROTATE_ELSEWHERE = (
    "use_credentials of an open RouterClient runs on the event loop its channel serves: from "
    "another thread, loop.call_soon_threadsafe(client.use_credentials, credentials)"
)
