"""Every upstream transport (lean, aiohttp, httpx's own) in a TLS handshake it does not finish:
the socket is closed when the request ends, whichever way it ends, not when the upstream gives
up on it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from tests.helpers import eventually
from tests.router_service.providers.lean_harness import Peer, Server

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
async def silent() -> AsyncIterator[tuple[Server, asyncio.Event]]:
    """A TLS upstream that takes the client's hello and never answers it; the event: the hello
    came."""
    hello = asyncio.Event()

    async def take_the_hello(peer: Peer) -> None:
        with contextlib.suppress(ConnectionError):
            await peer.reader.read(1)
            hello.set()
            await peer.reader.read()  # until the client closes

    async with Server(take_the_hello) as server:
        yield server, hello


def get(server: Server, *, connect: float) -> httpx.Request:
    timeout = {"connect": connect, "read": 60.0, "write": 60.0, "pool": 60.0}
    url = f"https://127.0.0.1:{server.port}/"
    return httpx.Request("GET", url, extensions={"timeout": timeout})


async def closed_by_the_client(server: Server) -> None:
    async def closed() -> bool:
        return len(server.closed) == 1

    await eventually(closed, what="the client's socket closed")


async def test_a_request_cancelled_in_its_tls_handshake_closes_its_socket(
    trusting: Callable[[ssl.SSLContext], httpx.AsyncBaseTransport],
    silent: tuple[Server, asyncio.Event],
) -> None:
    """The call was given up (its task cancelled: the caller went away, its deadline passed)
    while the upstream held the client's hello unanswered: the transport closes the socket then,
    as it would on its own connect timeout, rather than leaving it open to the upstream."""
    server, hello = silent
    async with trusting(ssl.create_default_context()) as transport:
        sending = asyncio.ensure_future(transport.handle_async_request(get(server, connect=60)))
        await hello.wait()
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending
        await closed_by_the_client(server)


async def test_a_tls_handshake_past_connect_s_is_a_connect_timeout_and_closes_its_socket(
    trusting: Callable[[ssl.SSLContext], httpx.AsyncBaseTransport],
    silent: tuple[Server, asyncio.Event],
    move_loop_clock: Callable[[float], None],
) -> None:
    """The handshake is part of the connect: past `connect`, httpx's ConnectTimeout (the call's
    CONNECT_FAILED), and the socket is closed. The loop's clock passes `connect` once the hello
    is there (a timer late by no more than the test's own run: no stall's grace beyond that)."""
    server, hello = silent
    async with trusting(ssl.create_default_context()) as transport:
        sending = asyncio.ensure_future(transport.handle_async_request(get(server, connect=60)))
        await hello.wait()
        move_loop_clock(60)
        with pytest.raises(httpx.ConnectTimeout):
            await sending
        await closed_by_the_client(server)
