"""The Redis client's connects (`_resp.py`, `RespClient.connection`): one per slot at a time,
its failure shared by the callers that waited for it."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from router_service.state._resp import RespClient

pytestmark = pytest.mark.timeout(20)


async def test_callers_waiting_for_a_connect_that_fails_share_its_failure() -> None:
    """One connect per slot, the others wait for it: when it fails, they fail with it rather
    than each trying again in turn (behind a Redis that swallows connects, the last of N
    callers waited N connect timeouts; refused, N connects in a row)."""
    accepted = 0

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        writer.close()  # before the login's answer: the connect fails

    listener = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    client = RespClient(f"redis://:pw@127.0.0.1:{port}/0", connections=1, connect_timeout_s=30)
    try:
        calls = [asyncio.ensure_future(client.execute("PING")) for _ in range(5)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(r, ConnectionError) for r in results), results
        assert accepted == 1
        # A later call tries again (the next one after the failure, not its waiters).
        with pytest.raises(ConnectionError):
            await client.execute("PING")
        assert accepted == 2
    finally:
        await client.aclose()
        listener.close()
        await listener.wait_closed()


async def test_a_connect_that_ends_after_aclose_is_closed_too() -> None:
    """A connect under way when the client closes (a call at shutdown) is not kept: its caller
    fails, and the connection is closed (kept, nothing would ever have closed it)."""
    at_login, answer, gone = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def slow_login(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)  # the AUTH
        at_login.set()
        await answer.wait()
        writer.write(b"+OK\r\n")
        with contextlib.suppress(ConnectionError):
            while await reader.read(1024):
                writer.write(b"+PONG\r\n")
        writer.close()
        gone.set()

    listener = await asyncio.start_server(slow_login, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    client = RespClient(f"redis://:pw@127.0.0.1:{port}/0", timeout_s=30, connect_timeout_s=30)
    try:
        call = asyncio.ensure_future(client.execute("PING"))
        await at_login.wait()
        await client.aclose()
        answer.set()
        with pytest.raises(ConnectionError, match="closed"):
            await call
        await gone.wait()  # the client closed it
    finally:
        listener.close()
        await listener.wait_closed()


async def test_callers_waiting_for_a_cancelled_connect_connect_themselves() -> None:
    """A connect whose caller left (cancelled) failed no one, whatever failed before it: the
    caller waiting behind it makes its own."""
    logins: list[int] = []
    unanswered = asyncio.Event()
    handlers: list[asyncio.Future[None]] = []  # each connection's, done when it ends

    async def login(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ended = asyncio.get_running_loop().create_future()
        handlers.append(ended)
        try:
            await serve(reader, writer)
        finally:
            ended.set_result(None)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)  # the AUTH
        logins.append(len(logins) + 1)
        if len(logins) == 1:  # hung up on: a failed connect
            writer.close()
            return
        if len(logins) == 2:  # never answered: its caller leaves
            unanswered.set()
        else:
            writer.write(b"+OK\r\n")
        with contextlib.suppress(ConnectionError):
            while await reader.read(1024):
                writer.write(b"+PONG\r\n")
        writer.close()

    listener = await asyncio.start_server(login, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    client = RespClient(f"redis://:pw@127.0.0.1:{port}/0", timeout_s=30, connect_timeout_s=30)
    try:
        with pytest.raises(ConnectionError):
            await client.execute("PING")
        leaving = asyncio.ensure_future(client.execute("PING"))
        await unanswered.wait()
        staying = asyncio.ensure_future(client.execute("PING"))
        await asyncio.sleep(0)  # one loop turn: it waits for the connect under way
        leaving.cancel()
        assert await staying == "PONG"
        assert logins == [1, 2, 3]
    finally:
        await client.aclose()
        await asyncio.gather(*handlers)  # each ends as the client closes its connection
        listener.close()
        await listener.wait_closed()
