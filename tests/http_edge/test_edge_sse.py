"""The SSE response releases what feeds it on every path, even those a real client rarely hits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import pytest

from http_edge._sse import SSEResponse

SCOPE = {"type": "http", "asgi": {"spec_version": "2.3"}}


class Feed:
    """An event source that records whether it was started, finished and closed."""

    def __init__(self) -> None:
        self.started = False
        self.finalized = False
        self.closed = 0

    async def events(self) -> AsyncIterator[bytes]:
        self.started = True
        try:
            yield b"data: 1\n\n"
            yield b"data: 2\n\n"
        finally:
            self.finalized = True

    async def on_close(self) -> None:
        self.closed += 1


async def never_disconnects() -> dict[str, Any]:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def failing_send(on: str) -> Any:
    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == on:
            raise OSError("the client went away")

    return send


@pytest.mark.parametrize(
    ("fails_on", "started"),
    [("http.response.body", True), ("http.response.start", False)],
)
async def test_send_failure_closes_the_feed(fails_on: str, started: bool) -> None:
    feed = Feed()
    response = SSEResponse(feed.events(), on_close=feed.on_close)
    async with asyncio.timeout(15):
        await response(SCOPE, never_disconnects, failing_send(fails_on))
    assert feed.started is started
    assert feed.finalized is started
    assert feed.closed == 1


async def test_complete_stream_closes_the_feed_once() -> None:
    feed = Feed()
    sent: list[bytes] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message.get("body", b""))

    async with asyncio.timeout(15):
        await SSEResponse(feed.events(), on_close=feed.on_close)(SCOPE, never_disconnects, send)
    assert b"".join(sent) == b"data: 1\n\ndata: 2\n\n"
    assert feed.finalized
    assert feed.closed == 1


async def test_a_disconnect_mid_stream_ends_it_quietly_and_closes_the_feed() -> None:
    """The client leaves while the feed waits for its next event: the response returns (no
    cancellation escapes to the server), the feed is closed and `on_close` runs once."""
    first_sent = asyncio.Event()
    finalized: list[bool] = []
    closed: list[int] = []

    async def events() -> AsyncIterator[bytes]:
        try:
            yield b"data: 1\n\n"
            await asyncio.Event().wait()  # the router has nothing more for now
            yield b"data: never\n\n"
        finally:
            finalized.append(True)

    async def on_close() -> None:
        closed.append(1)

    async def send(message: MutableMapping[str, Any]) -> None:
        if message.get("body"):
            first_sent.set()

    async def receive() -> dict[str, Any]:
        await first_sent.wait()
        return {"type": "http.disconnect"}

    task = asyncio.current_task()
    assert task is not None
    async with asyncio.timeout(15):
        await SSEResponse(events(), on_close=on_close)(SCOPE, receive, send)
    assert finalized == [True] and closed == [1]
    assert task.cancelling() == 0  # the cancellation that ended the stream was taken back


async def test_a_cancellation_from_outside_propagates_and_still_closes_the_feed() -> None:
    """The server shutting down cancels the request: that is not a client leaving, so the
    cancellation goes on, and the router call is cancelled all the same."""
    started = asyncio.Event()
    closed: list[int] = []

    async def events() -> AsyncIterator[bytes]:
        started.set()
        await asyncio.Event().wait()
        yield b"data: never\n\n"

    async def on_close() -> None:
        closed.append(1)

    async def send(message: MutableMapping[str, Any]) -> None:
        return None

    request = asyncio.ensure_future(
        SSEResponse(events(), on_close=on_close)(SCOPE, never_disconnects, send)
    )
    await started.wait()
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    assert closed == [1]
