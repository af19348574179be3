"""Every upstream transport (lean, aiohttp, httpx's own) in a TLS handshake it does not finish:
the socket is closed when the request ends, whichever way it ends, not when the upstream gives
up on it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable

import httpx
import pytest

from tests.helpers import eventually
from tests.router_service.providers.lean_harness import Peer, Server

pytestmark = pytest.mark.timeout(20)


async def test_a_request_cancelled_in_its_tls_handshake_closes_its_socket(
    trusting: Callable[[ssl.SSLContext], httpx.AsyncBaseTransport],
) -> None:
    """The call was given up (its task cancelled: the caller went away, its deadline passed)
    while the upstream held the client's hello unanswered: the transport closes the socket then,
    as it would on its own connect timeout, rather than leaving it open to the upstream."""
    hello = asyncio.Event()

    async def silent(peer: Peer) -> None:  # takes the hello, never answers it
        with contextlib.suppress(ConnectionError):
            await peer.reader.read(1)
            hello.set()
            await peer.reader.read()  # until the client closes

    transport = trusting(ssl.create_default_context())
    async with Server(silent) as server, transport:
        timeout = {"connect": 60.0, "read": 60.0, "write": 60.0, "pool": 60.0}
        url = f"https://127.0.0.1:{server.port}/"
        request = httpx.Request("GET", url, extensions={"timeout": timeout})
        sending = asyncio.ensure_future(transport.handle_async_request(request))
        await hello.wait()
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending

        async def closed() -> bool:
            return len(server.closed) == 1

        await eventually(closed, what="the client's socket closed")
