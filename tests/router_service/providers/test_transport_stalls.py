"""Every upstream transport (lean, aiohttp, httpx's own) across a stall of the router's own loop
(a long callback, a collector pause): what the upstream did in time while the loop was held up
counts as done in time, not as a connect or read timeout (CONNECT_FAILED, FIRST_CHUNK_TIMEOUT for
an upstream that did nothing wrong). The stall is the loop's clock moved on by a callback, as a
callback holding the loop that long would move it: the timers due meanwhile come due together
with what the sockets got."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from router_service.config import HttpConfig
from router_service.fake_upstream import FakeUpstream
from router_service.providers import create_http_client
from router_service.providers._http import send_upstream
from tests.pki import CA
from tests.router_service.providers.lean_harness import Peer, Server, unanswered

pytestmark = pytest.mark.timeout(20)

STALL_S = 10.0


@pytest.fixture(params=["lean", "aiohttp", "httpx"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    """The router's upstream client (`create_http_client`) on each `http.transport`."""
    async with create_http_client(HttpConfig(transport=request.param)) as client:
        yield client


@pytest.fixture
def stall(move_loop_clock: Callable[[float], None]) -> Callable[[], None]:
    """A stall of the running loop, `STALL_S` long, as seen by its clock and its timers."""
    return lambda: move_loop_clock(STALL_S)


@pytest.fixture
async def stalled_connects(
    monkeypatch: pytest.MonkeyPatch, stall: Callable[[], None]
) -> Callable[[], int]:
    """The loop stalls in every connect made on it: once the socket's connect is under way (its
    timer set by then, whichever transport), before the loop sees the answer. Gives how many."""
    loop = asyncio.get_running_loop()
    connect = loop.sock_connect
    stalls = [0]

    async def sock_connect(sock: socket.socket, address: tuple[str, int]) -> None:
        stalls[0] += 1
        loop.call_soon(stall)  # runs once this connect waits for the answer (or its callbacks)
        return await connect(sock, address)

    monkeypatch.setattr(loop, "sock_connect", sock_connect)
    return lambda: stalls[0]


def get(url: str, *, connect: float = 5.0, read: float = 5.0) -> httpx.Request:
    """A request timed as an adapter times one; its pool timeout is the call's whole time (60 s
    here) as there: aiohttp's own `connect` timer (pool + connect) spans a new connection too, and
    a stall longer than that one is not what these tests are about."""
    timeout = {"connect": connect, "read": read, "write": 5.0, "pool": 60.0}
    return httpx.Request("GET", url, extensions={"timeout": timeout})


async def test_a_connect_made_while_the_loop_stalled_past_its_timeout_is_connected(
    fake: FakeUpstream, client: httpx.AsyncClient, stalled_connects: Callable[[], int]
) -> None:
    """The upstream accepted at once; the loop, held up longer than the connect timeout, finds
    the socket connected and the timer due when it wakes."""
    response = await send_upstream(client, get(f"{fake.base_url}/models"))
    assert response.status_code == 200 and response.json()["object"] == "list"
    assert stalled_connects() == 1


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


async def test_a_tls_handshake_done_while_the_loop_stalled_past_its_timeout_is_connected(
    trusting: Callable[[ssl.SSLContext], httpx.AsyncBaseTransport],
    stall: Callable[[], None],
    tmp_path: Path,
) -> None:
    """The upstream answered the handshake at once; the loop, held up longer than the connect
    timeout as the server took the client's hello (its SNI callback), finds the handshake's
    answer there and the timer due when it wakes."""
    ca = CA(tmp_path, "stall-ca")
    issued = ca.issue("upstream", server=True)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(issued.cert, issued.key)
    hellos: list[str | None] = []

    def hello(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        hellos.append(name)
        stall()

    server_tls.sni_callback = hello
    transport = trusting(ssl.create_default_context(cafile=str(ca.issued.cert)))
    async with Server(tls=server_tls) as server, transport:
        url = f"https://localhost:{server.port}/"  # the certificate names localhost
        response = await transport.handle_async_request(get(url))
        try:
            assert response.status_code == 200 and await response.aread() == b"ok"
            assert hellos == ["localhost"]  # one handshake, stalled
        finally:
            await response.aclose()
