"""How soon a client finds a router that came back: grpc's reconnect backoff, 1 s growing by
1.6 to 120 s by default, held to `clients.MAX_RECONNECT_BACKOFF_MS`. Unbounded, a router down
a minute was called again only ~15 s after it was back (the edge answering 503 meanwhile), one
down a few minutes up to 2 minutes after. Measured on a listener that takes each connection and
closes it: every attempt fails, as on a router's closed port, and is counted."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest

from clients import MAX_RECONNECT_BACKOFF_MS
from clients._base import channel_options
from tests.helpers import close_listener, eventually

pytestmark = pytest.mark.timeout(60)

# Attempts seen before the gaps between them are judged: grpc's gaps grow 1, 1.6, 2.6, 4.1,
# 6.6 s unbounded (+-20 %), so the 5th gap (5.2 s at least) is past LONGEST_GAP_S. Each further
# attempt waits out one more bounded gap (~2 s) and tells nothing more.
ATTEMPTS = 6
# The longest gap allowed: the bound, its jitter (+20 %), and a loaded machine's slack.
LONGEST_GAP_S = MAX_RECONNECT_BACKOFF_MS / 1000 * 1.2 + 1.5


@contextlib.asynccontextmanager
async def refusing_router() -> AsyncIterator[tuple[str, list[float]]]:
    """An address whose every connection is closed at once, and the times they were made."""
    loop = asyncio.get_running_loop()
    attempts: list[float] = []

    def closed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        attempts.append(loop.time())
        writer.close()

    server = await asyncio.start_server(closed, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}", attempts
    finally:
        await close_listener(server)


async def longest_gap(attempts: list[float], nudge: Callable[[], Awaitable[object]]) -> float:
    """The longest gap between the first `ATTEMPTS` connection attempts, `nudge` asking for a
    connection all along (a channel in backoff makes none until it ends)."""

    async def enough() -> bool:
        await nudge()
        return len(attempts) >= ATTEMPTS

    await eventually(enough, within=40, what=f"{ATTEMPTS} connection attempts")
    return max(b - a for a, b in itertools.pairwise(attempts[:ATTEMPTS]))


async def test_a_client_channel_tries_a_router_that_is_down_every_few_seconds() -> None:
    async with refusing_router() as (target, attempts):
        options = channel_options(16 * 1024 * 1024, ())
        async with grpc.aio.insecure_channel(target, options=options) as channel:

            async def nudge() -> None:
                channel.get_state(try_to_connect=True)

            assert await longest_gap(attempts, nudge) <= LONGEST_GAP_S
