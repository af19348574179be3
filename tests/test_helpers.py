"""The suite's own helpers where they stand in for asyncio's behaviour: `close_listener`."""

from __future__ import annotations

import asyncio
import socket

from tests.helpers import close_listener


async def test_a_connection_accepted_as_the_listener_closes_reaches_its_callback() -> None:
    """asyncio accepts a connection in one loop turn and makes its transport in the next; a
    server closed in between drops the accepted socket unclosed (3.11: `Server._attach` asserts
    the server is open). `close_listener` stops accepting first, so the connection reaches the
    server's callback, which closes it."""
    came: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(lambda _, writer: came.append(writer), "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    with socket.create_connection((host, port)) as client:
        await asyncio.sleep(0)  # the next turn's select sees it: the loop accepts it
        await asyncio.sleep(0)  # back here before the turn that would make its transport
        await close_listener(server)
        assert len(came) == 1  # a plain `server.close()` here: never, and a leaked socket
        came[0].close()
        await came[0].wait_closed()
        client.settimeout(15)  # a hang guard: the close reaches the client at once
        assert client.recv(1) == b""
