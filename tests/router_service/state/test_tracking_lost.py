"""The read cache's subscriber lost while it is being set up (a proxy that hangs up on `CLIENT`,
a connection dropped or timed out then): the read goes on uncached, as with a server that
refuses tracking, and the subscriber is tried again a while later, not by every read. (The read
failed, each one: the replica went back to local state at every read, never for good.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from router_service.clock import ManualClock
from router_service.state import RedisStateStore
from router_service.state._resp_wire import Incomplete, parse
from tests.helpers import eventually

pytestmark = pytest.mark.timeout(20)


class HangsUpOnClient:
    """A loopback Redis that answers MGET (nothing stored) and hangs up on `CLIENT`."""

    def __init__(self) -> None:
        self.hang_ups = 0
        self.serving = 0  # connections not ended yet

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.serving += 1
        try:
            await self._serve(reader, writer)
        finally:
            self.serving -= 1

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer, pos = bytearray(), 0
        try:
            while data := await reader.read(65536):
                buffer += data
                pos = 0
                try:
                    while pos < len(buffer):
                        command, pos = parse(buffer, pos)
                        if not self._answer(command, writer):
                            return
                except Incomplete:
                    pass
                del buffer[:pos]
        finally:
            writer.close()

    def _answer(self, command: list[str], writer: asyncio.StreamWriter) -> bool:
        name = command[0].upper()
        if name == "CLIENT":
            self.hang_ups += 1
            return False
        if name == "MGET":
            writer.write(b"*%d\r\n" % (len(command) - 1) + b"$-1\r\n" * (len(command) - 1))
        else:
            writer.write(b"+OK\r\n")
        return True


@pytest.fixture
async def hangs_up() -> AsyncIterator[tuple[HangsUpOnClient, str]]:
    server = HangsUpOnClient()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    yield server, f"redis://127.0.0.1:{listener.sockets[0].getsockname()[1]}/0"

    async def ended() -> bool:
        return server.serving == 0

    await eventually(ended, what="the server's side of the closed connections")
    listener.close()
    await listener.wait_closed()


async def test_a_subscriber_lost_while_set_up_leaves_reads_uncached(
    hangs_up: tuple[HangsUpOnClient, str],
) -> None:
    server, url = hangs_up
    clock = ManualClock()
    store = RedisStateStore.from_url(url, prefix="t", clock=clock)
    try:
        assert await store.deadlines(["cool:a"]) == [0.0]
        assert await store.get_values(["sticky:s"]) == [None]
        assert server.hang_ups == 1  # not one per read
        assert store.cache is not None and store.cache.misses == 2
        clock.advance(1.0)  # a while later, the next read tries again
        assert await store.deadlines(["cool:a"]) == [0.0]
        assert server.hang_ups == 2
    finally:
        await store.aclose()
