"""The read cache's subscriber lost while it is being set up (a proxy that hangs up on `CLIENT`,
a connection dropped or timed out then): the read goes on uncached, as with a server that
refuses tracking, and the subscriber is tried again a while later, not by every read. (The read
failed, each one: the replica went back to local state at every read, never for good.) A server
whose `CLIENT ID` is no number (a proxy's own answer) refuses tracking: logged once, reads
uncached (a ValueError failed them)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TypeVar

import pytest

from router_service.clock import ManualClock
from router_service.state import RedisStateStore
from router_service.state._resp_wire import MORE, ReplyReader
from tests.helpers import eventually

pytestmark = pytest.mark.timeout(20)

S = TypeVar("S", bound="HangsUpOnClient")


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
        commands = ReplyReader()  # commands are arrays of bulk strings, as replies can be
        try:
            while data := await reader.read(65536):
                commands.feed(data)
                while (command := commands.read()) is not MORE:
                    if not self._answer(command, writer):
                        return
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


class NamesNoClientId(HangsUpOnClient):
    """A loopback Redis that answers `CLIENT ID` with a string, not a number."""

    def __init__(self) -> None:
        super().__init__()
        self.client_calls: list[list[str]] = []

    def _answer(self, command: list[str], writer: asyncio.StreamWriter) -> bool:
        if command[0].upper() == "CLIENT":
            self.client_calls.append(command)
            writer.write(b"$5\r\nproxy\r\n" if command[1].upper() == "ID" else b"+OK\r\n")
            return True
        return super()._answer(command, writer)


@pytest.fixture
async def hangs_up() -> AsyncIterator[tuple[HangsUpOnClient, str]]:
    async for served in _served(HangsUpOnClient()):
        yield served


@pytest.fixture
async def no_client_id() -> AsyncIterator[tuple[NamesNoClientId, str]]:
    async for served in _served(NamesNoClientId()):
        yield served


async def _served(server: S) -> AsyncIterator[tuple[S, str]]:
    """`server` on a loopback port, and its URL; ended once its connections are."""
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


async def test_a_client_id_not_a_number_is_tracking_refused(
    no_client_id: tuple[NamesNoClientId, str], caplog: pytest.LogCaptureFixture
) -> None:
    server, url = no_client_id
    clock = ManualClock()
    store = RedisStateStore.from_url(url, prefix="t", clock=clock)
    try:
        with caplog.at_level(logging.WARNING, logger="switchboard.state"):
            assert await store.get_values(["sticky:s"]) == [None]
            clock.advance(3600.0)
            assert await store.deadlines(["cool:a"]) == [0.0]
        assert store.cache is not None and not store.cache.enabled
        assert store.cache.misses == 2  # read from Redis, both
        assert [c[1].upper() for c in server.client_calls] == ["ID"]  # no TRACKING REDIRECT proxy
        refusals = [r for r in caplog.records if "redis refused key tracking" in r.getMessage()]
        assert len(refusals) == 1
    finally:
        await store.aclose()
