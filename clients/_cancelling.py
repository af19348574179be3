"""Ending grpc.aio calls early without leaking what grpc's C core allocated for them.

grpc.aio (1.7x to 1.85 at least, grpc/grpc#43360) frees a batch's native operations only when the
coroutine awaiting the batch sees it complete. Cancelling an asyncio task in that await leaks them:
~1 KiB per unary call (the task is grpc.aio's own response task, which a cancellation of ours
reaches because asyncio passes a task's cancellation on to the task it awaits, and which
``call.cancel()`` cancels as well) and ~100 bytes per stream read. Cancelling the call in gRPC
Core instead (``Call._cancel``: what ``call.cancel()`` does before cancelling that task) makes Core
end the batch with CANCELLED at once; the awaiting coroutine sees it complete and frees them.

Both go through private attributes of ``grpc.aio._call`` (``UnaryUnaryCall._call_response``,
``Call._cancel``), read with ``getattr``: a call without them (an intercepted call, another grpc
version) is awaited and cancelled the public way, as before, which works and only leaks.

A channel replaced by new credentials is ended here too (`retire_channel`): its calls get a
drain, then what still runs is cancelled with the channel.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from functools import partial
from typing import Any

__all__ = ["cancel_in_core", "headers_came", "interrupt_stream", "retire_channel", "unary_result"]

# grpc.aio's own text for a call cancelled by the application (`_LOCAL_CANCELLATION_DETAILS`).
_DETAILS = "Locally cancelled by application!"
# How long a cancelled caller waits for Core to end the call: it ends it on the poller's next turn,
# and the bound only keeps a grpc bug from holding a cancellation up.
_END_WAIT_S = 1.0


def cancel_in_core(call: Any) -> bool:
    """Cancel ``call`` in gRPC Core only, leaving grpc.aio's tasks to see their batches end; True
    if the call was still running. Falls back to ``call.cancel()``."""
    cancel = getattr(call, "_cancel", None)
    if cancel is None:
        return bool(call.cancel())
    return bool(cancel(_DETAILS))


def interrupt_stream(call: Any) -> None:
    """Cancel a unary-stream call so that a read pending on it ends by itself, freeing what grpc
    lets be freed.

    Once the call has started (grpc.aio's `_preparation` task, which sends the request and waits
    for the response headers, is done), only in Core: the pending read's batch then completes
    (~100 bytes saved per stream). Before that the read waits for that task, whose headers batch
    is lost however the call ends (cancelled in Core, the batch fails, and grpc frees nothing of
    a failed batch either); the public `cancel()` then also cancels that task, which spares the
    read batch a Core-only cancel would start and fail (measured per stream: ~90 bytes lost this
    way, ~190 in Core only, ~150 by cancelling the reading task).
    """
    preparation = getattr(call, "_preparation", None)
    if isinstance(preparation, asyncio.Task) and preparation.done():
        cancel_in_core(call)
    else:
        call.cancel()


async def headers_came(call: Any, wait_s: float) -> None:
    """Wait at most ``wait_s`` seconds for a unary-stream call's response headers (grpc.aio's
    `_preparation` task), without touching that task: an `interrupt_stream` once they came is the
    Core-only cancel that frees a pending read, where one a moment before them loses the headers
    batch. For a caller leaving while the server's headers are on their way (a loaded machine
    widens that moment: a third of the openings cut in one test)."""
    preparation = getattr(call, "_preparation", None)
    if isinstance(preparation, asyncio.Task) and not preparation.done():
        await asyncio.wait((preparation,), timeout=wait_s)


async def unary_result(call: Any) -> Any:
    """What ``await call`` gives for a grpc.aio unary call (its response, an ``AioRpcError`` or
    ``CancelledError``), except that a cancellation of the awaiting task cancels the call in Core,
    waits (bounded) for grpc.aio's response task to see it end, then propagates."""
    response = getattr(call, "_call_response", None)
    if not isinstance(response, asyncio.Task) or response.done():
        return await call
    # Our own future rather than the response task: awaiting that task would hand it our
    # cancellation. One future and one callback per call, on the path of every request; not
    # `asyncio.shield`, which adds a second callback and a closure per call.
    woken = response.get_loop().create_future()
    response.add_done_callback(partial(_wake, woken))
    try:
        await woken
    except asyncio.CancelledError:
        if not response.done() and cancel_in_core(call):
            await asyncio.wait((response,), timeout=_END_WAIT_S)
        raise
    return await call  # the response task is done: no loop turn, grpc.aio's own result or error


def _wake(woken: asyncio.Future[None], _response: object) -> None:
    if not woken.done():  # cancelled with its task: nothing waits any more
        woken.set_result(None)


async def retire_channel(channel: Any, calls: Iterable[Any], drain_s: float) -> None:
    """Close a replaced channel once the calls it carries have ended; those still running after
    `drain_s` seconds, or when this task is cancelled (the client closing), are cancelled."""
    running = [call for call in calls if not call.done()]
    ended = [asyncio.ensure_future(_ended(call)) for call in running]
    try:
        if ended:
            await asyncio.wait(ended, timeout=drain_s)
    finally:
        await channel.close()  # without a grace: cancels what still runs on it


async def _ended(call: Any) -> None:
    # code() answers once the call is over, however it ended; what it says is the caller's.
    with contextlib.suppress(Exception):
        await call.code()
