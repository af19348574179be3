"""Every upstream transport (lean, aiohttp, httpx's own) across a stall of the router's own loop
(a long callback, a collector pause): what the upstream did in time while the loop was held up
counts as done in time, not as a connect or read timeout (CONNECT_FAILED, FIRST_CHUNK_TIMEOUT for
an upstream that did nothing wrong). The stall is the loop's clock moved on by a callback, as a
callback holding the loop that long would move it: the timers due meanwhile come due together
with what the sockets got."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from router_service.config import HttpConfig
from router_service.fake_upstream import FakeUpstream
from router_service.providers import create_http_client
from router_service.providers._http import send_upstream
from tests.router_service.providers.lean_harness import Peer, Server, unanswered

pytestmark = pytest.mark.timeout(20)

STALL_S = 10.0


@pytest.fixture(params=["lean", "aiohttp", "httpx"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    """The router's upstream client (`create_http_client`) on each `http.transport`."""
    async with create_http_client(HttpConfig(transport=request.param)) as client:
        yield client


@pytest.fixture
async def stall(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """A stall of the running loop, `STALL_S` long, as seen by its clock and its timers."""
    loop = asyncio.get_running_loop()
    stalled = [0.0]
    real_time = loop.time
    monkeypatch.setattr(loop, "time", lambda: real_time() + stalled[0])

    def hold() -> None:
        stalled[0] += STALL_S

    return hold


def get(url: str, *, connect: float = 5.0, read: float = 5.0) -> httpx.Request:
    timeout = {"connect": connect, "read": read, "write": 5.0, "pool": 5.0}
    return httpx.Request("GET", url, extensions={"timeout": timeout})


async def test_a_connect_made_while_the_loop_stalled_past_its_timeout_is_connected(
    fake: FakeUpstream, client: httpx.AsyncClient, stall: Callable[[], None]
) -> None:
    """The upstream accepted at once; the loop, held up longer than the connect timeout, finds
    the socket connected and the timer due when it wakes."""
    fetching = asyncio.ensure_future(send_upstream(client, get(f"{fake.base_url}/models")))
    asyncio.get_running_loop().call_soon(stall)  # after the fetch's first step: connecting
    response = await fetching
    assert response.status_code == 200 and response.json()["object"] == "list"


async def test_a_connect_the_upstream_never_answers_still_times_out(
    client: httpx.AsyncClient,
) -> None:
    """A listener whose accept queue is full leaves the SYN unanswered: connect_s bounds it."""
    with unanswered() as url, pytest.raises(httpx.ConnectTimeout):
        await send_upstream(client, get(url, connect=0.05))


async def test_a_response_head_that_came_while_the_loop_stalled_is_read(
    client: httpx.AsyncClient, stall: Callable[[], None]
) -> None:
    """The upstream sent its status and headers in time, its body later: the loop, held up past
    the read timeout meanwhile, reads the head it has rather than timing the wait out."""
    sent_head = asyncio.Event()
    head_read = asyncio.Event()

    async def head_then_body(peer: Peer) -> None:
        await peer.read_request()
        peer.writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n")  # on loopback: there
        stall()  # before the loop turns again to read it
        sent_head.set()
        await head_read.wait()
        peer.writer.write(b"body")
        await peer.reader.read()  # until the client closes

    async with Server(head_then_body) as server:
        request = get(server.url, read=1.0)
        response = await send_upstream(client, request, stream=True)
        assert sent_head.is_set()
        head_read.set()
        try:
            assert response.status_code == 200 and await response.aread() == b"body"
        finally:
            await response.aclose()
