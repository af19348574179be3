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
    async with asyncio.timeout(5):
        await response(SCOPE, never_disconnects, failing_send(fails_on))
    assert feed.started is started
    assert feed.finalized is started
    assert feed.closed == 1


async def test_complete_stream_closes_the_feed_once() -> None:
    feed = Feed()
    sent: list[bytes] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message.get("body", b""))

    async with asyncio.timeout(5):
        await SSEResponse(feed.events(), on_close=feed.on_close)(SCOPE, never_disconnects, send)
    assert b"".join(sent) == b"data: 1\n\ndata: 2\n\n"
    assert feed.finalized
    assert feed.closed == 1
