"""Server-sent events as the OpenAI SDK reads them: `data:` lines, comments, `[DONE]`.

Chat streams never have `id:` or `event:` lines: the OpenAI SDK mishandles them there. The
Responses API's events are named (`event: response.output_text.delta`), as OpenAI sends them
(`named_event`); the SDK reads their type from the data.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ._disconnect import watch_departure
from ._json import dumps
from ._stream_failure import forget

__all__ = [
    "DONE",
    "HEAD_ONLY",
    "KEEPALIVE",
    "SSE_HEADERS",
    "SSEResponse",
    "data_event",
    "error_event",
    "named_event",
]

DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keepalive\n\n"

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
# The scope key `_hot.HeadAsGet` marks a HEAD with (answered as its GET, without the body).
HEAD_ONLY = "switchboard.head_only"


def data_event(obj: Any) -> bytes:
    """One `data:` event; compact JSON never contains a raw newline."""
    return b"data: " + dumps(obj) + b"\n\n"


def named_event(event: dict[str, Any]) -> bytes:
    """One Responses API event: its `type` as the SSE event name, the event as data."""
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + dumps(event) + b"\n\n"


def error_event(message: str, type: str, code: str | None, param: str | None = None) -> bytes:
    """The error event OpenAI streams end with; the SDK raises `openai.APIError` on it."""
    return data_event({"error": {"message": message, "type": type, "code": code, "param": param}})


class SSEResponse(StreamingResponse):
    """A `text/event-stream` response that always releases what feeds it.

    It watches for the client going away whatever ASGI spec version the server speaks, and on
    every path (done, disconnect, send failure, cancellation) closes the event iterator and then
    calls `on_close` (which cancels the router call). On a disconnect it first calls `interrupt`
    (`RouterStream.interrupt`): when that wakes a pending read, the events end by themselves and
    the task is left alone (grpc.aio leaks a read cancelled in its await); otherwise, or without
    `interrupt`, the task is cancelled. A stream its caller left has not failed
    (`_stream_failure.forget`), however its relay ended it.
    """

    def __init__(
        self,
        events: AsyncIterator[bytes],
        *,
        on_close: Callable[[], Awaitable[None]],
        interrupt: Callable[[], bool] | None = None,
        headers: Mapping[str, str] | None = None,
        media_type: str = "text/event-stream",
    ) -> None:
        """`media_type`: what else the stream is, when it is not events (speech's audio)."""
        super().__init__(events, media_type=media_type, headers={**SSE_HEADERS, **(headers or {})})
        self._events = events
        self._on_close = on_close
        self._interrupt = interrupt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The stream is written in this task; the connection (or a watcher task, on another
        # server: `watch_departure`) tells us of the disconnect and we cancel it. Plain asyncio:
        # Starlette's anyio task group and cancel scopes cost ~50 µs per stream, before the
        # first event could leave.
        if scope.get(HEAD_ONLY):
            await self._headers_only(send)
            return
        task = asyncio.current_task()
        assert task is not None
        state = {"finished": False, "cancelled": False, "left": False}

        def on_disconnect() -> None:
            if state["finished"]:
                return
            state["left"] = True
            if self._interrupt is None or not self._interrupt():
                state["cancelled"] = True
                task.cancel()

        unwatch = watch_departure(scope, receive, on_disconnect)
        try:
            with contextlib.suppress(OSError):  # the client went away mid-write
                await self.stream_response(send)
        except asyncio.CancelledError:
            if not state["cancelled"]:
                raise
            task.uncancel()  # our own cancellation: the client left, nothing failed
        finally:
            state["finished"] = True  # a disconnect noticed from now on changes nothing
            unwatch()
            if state["left"]:
                forget()  # the stream's end its caller's leaving made is no failure of ours
            # Shielded: a cancellation arriving now must not skip cancelling the router call.
            await asyncio.shield(self._release())

    async def _headers_only(self, send: Send) -> None:
        """A HEAD's answer: the stream's headers, then it ends and the stream is closed at once
        (not relayed to nobody until its end, holding the connection and the router call)."""
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await asyncio.shield(self._release())

    async def _release(self) -> None:
        try:
            aclose = getattr(self._events, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            await self._on_close()
