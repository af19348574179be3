"""`LeanTransport`'s pool, against real servers on loopback: waiting for a slot, pool timeouts,
keep-alive expiry on a fake clock, idle limits, and connections the server ends (stale ones are
not used, a request dropped on a reused connection is sent once more, never twice)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from router_service.fake_upstream import FakeUpstream
from router_service.providers._lean_transport import _ResponseBody
from tests.router_service.providers.lean_harness import (
    FakeClock,
    MakeTransport,
    Peer,
    Server,
    fetch,
    request,
    unanswered,
    until,
    waiting,
)

pytestmark = pytest.mark.timeout(20)

# -- the pool ---------------------------------------------------------------------------------


async def test_a_request_waits_for_the_only_connection(
    fake: FakeUpstream, lean: MakeTransport
) -> None:
    transport = lean(max_connections=1)
    url = f"{fake.base_url}/models"
    first = await transport.handle_async_request(request(url))
    assert (transport.open_connections, transport.idle_connections) == (1, 0)
    second = asyncio.create_task(transport.handle_async_request(request(url)))
    await until(waiting(transport, 1))
    assert not second.done() and fake.state.count() == 1  # it waits: nothing sent

    await first.aread()  # read to the end: the body closes, the connection goes back
    response = await second
    assert response.status_code == 200 and fake.state.count() == 2
    assert (transport.open_connections, transport.idle_connections) == (1, 0)
    await response.aread()
    assert (transport.open_connections, transport.idle_connections) == (1, 1)
    first_peer, second_peer = (record.peer for record in fake.state.calls())
    assert first_peer == second_peer  # the one connection, reused


async def test_pool_timeout_while_the_only_connection_is_busy(
    fake: FakeUpstream, lean: MakeTransport
) -> None:
    transport = lean(max_connections=1)
    url = f"{fake.base_url}/models"
    first = await transport.handle_async_request(request(url))
    with pytest.raises(httpx.PoolTimeout):
        await transport.handle_async_request(request(url, pool=0.05))
    assert fake.state.count() == 1 and not transport._waiters
    assert (transport.open_connections, transport.idle_connections) == (1, 0)
    # The open body was not disturbed, and the connection serves the next request.
    assert (await first.aread()).startswith(b"{")
    assert (await fetch(transport, url)).status_code == 200
    assert len({record.peer for record in fake.state.calls()}) == 1


async def test_a_cancelled_waiter_passes_its_turn_on(
    fake: FakeUpstream, lean: MakeTransport
) -> None:
    """A waiter woken for the freed connection and cancelled before it ran must not take the
    wake-up with it: the next waiter gets the connection."""
    transport = lean(max_connections=1)
    url = f"{fake.base_url}/models"
    first = await transport.handle_async_request(request(url))
    cancelled = asyncio.create_task(transport.handle_async_request(request(url)))
    await until(waiting(transport, 1))
    served = asyncio.create_task(transport.handle_async_request(request(url, pool=0.5)))
    await until(waiting(transport, 2))

    body = first.stream
    assert isinstance(body, _ResponseBody)
    async for _ in body:
        pass
    await body.aclose()  # the connection goes idle and the first waiter is woken, at once
    cancelled.cancel()  # before that waiter runs
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    response = await served
    assert (await response.aread()).startswith(b"{")
    assert len({record.peer for record in fake.state.calls()}) == 1


async def test_aclose_fails_a_request_waiting_for_a_slot(
    fake: FakeUpstream, lean: MakeTransport
) -> None:
    transport = lean(max_connections=1)
    url = f"{fake.base_url}/models"
    first = await transport.handle_async_request(request(url))
    waiter = asyncio.create_task(transport.handle_async_request(request(url, pool=10.0)))
    await until(waiting(transport, 1))
    await transport.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await waiter
    assert fake.state.count() == 1
    # The body in use still reads; closed, its connection is not kept by the closed pool.
    assert (await first.aread()).startswith(b"{")
    assert transport.idle_connections == 0
    await until(lambda: transport.open_connections == 0)


async def test_an_idle_connection_to_another_origin_makes_room(lean: MakeTransport) -> None:
    transport = lean(max_connections=1)
    async with Server() as a, Server() as b:
        await fetch(transport, a.url)
        assert (transport.open_connections, transport.idle_connections) == (1, 1)
        assert (await fetch(transport, b.url)).status_code == 200
        await a.peers[0].eof.wait()  # the idle connection to `a` was closed for `b`'s
        assert (transport.open_connections, transport.idle_connections) == (1, 1)
        assert (a.requests(), b.requests()) == ([1], [1])


async def test_keepalive_expiry_on_the_clock(fake: FakeUpstream, lean: MakeTransport) -> None:
    clock = FakeClock()
    transport = lean(max_connections=1, keepalive_expiry_s=10.0, clock=clock)
    url = f"{fake.base_url}/models"
    await fetch(transport, url)  # idle since 1000
    clock.now += 9.5
    await fetch(transport, url)  # younger than the expiry: reused; idle since 1009.5
    clock.now += 10.5
    await fetch(transport, url)  # older: closed, and a new connection made in its slot
    first, second, third = (record.peer for record in fake.state.calls())
    assert first == second != third
    assert (transport.open_connections, transport.idle_connections) == (1, 1)


async def test_only_max_keepalive_connections_stay_idle(
    fake: FakeUpstream, lean: MakeTransport
) -> None:
    transport = lean(max_connections=4, max_keepalive_connections=1)
    url = f"{fake.base_url}/models"
    first = await transport.handle_async_request(request(url))
    second = await transport.handle_async_request(request(url))
    assert (transport.open_connections, transport.idle_connections) == (2, 0)
    await first.aread()
    await second.aread()
    assert transport.idle_connections == 1
    await until(lambda: transport.open_connections == 1)  # the other one was closed
    await fetch(transport, url)
    peers = [record.peer for record in fake.state.calls()]
    assert peers[0] != peers[1] and peers[2] == peers[0]  # the one kept is the one reused


# -- connections the server ends --------------------------------------------------------------


async def test_a_connection_the_server_closed_while_idle_is_not_used(
    lean: MakeTransport,
) -> None:
    async def answer_once(peer: Peer) -> None:
        await peer.read_request()
        peer.respond(b"first", "Connection: keep-alive")

    transport = lean()
    async with Server(answer_once) as server:
        assert (await fetch(transport, server.url)).content == b"first"
        await server.wait_closed(1)
        await until(lambda: transport.open_connections == 0)  # the client saw the close
        assert transport.idle_connections == 0
        response = await fetch(transport, server.url)
        assert response.headers["x-conn"] == "2"
        assert server.requests() == [1, 1]  # nothing sent on the closed connection


async def test_a_request_the_server_drops_on_a_reused_connection_is_sent_once_more(
    lean: MakeTransport,
) -> None:
    async def drop_the_second(peer: Peer) -> None:
        await peer.read_request()
        peer.respond(b"first")
        if peer.number == 1:
            await peer.read_request()  # and close without a byte of answer

    transport = lean()
    async with Server(drop_the_second) as server:
        await fetch(transport, server.url)
        assert transport.idle_connections == 1
        response = await fetch(transport, server.url, method="POST", content=b"payload")
        assert response.status_code == 200 and response.headers["x-conn"] == "2"
        assert server.requests() == [2, 1]  # sent twice: once dropped, once answered
        assert [peer.requests[-1].body for peer in server.peers] == [b"payload", b"payload"]


async def test_a_dropped_request_is_sent_once_more_at_most(lean: MakeTransport) -> None:
    async def answer_only_the_first(peer: Peer) -> None:
        if peer.number == 1:
            await peer.read_request()
            peer.respond()
        await peer.read_request()  # and close without answering

    transport = lean()
    async with Server(answer_only_the_first) as server:
        await fetch(transport, server.url)
        with pytest.raises(httpx.RemoteProtocolError):
            await fetch(transport, server.url, method="POST", content=b"payload")
        assert server.requests() == [2, 1]  # the retry, on a new connection, was the last


async def test_a_read_timeout_on_a_reused_connection_is_not_a_retry(lean: MakeTransport) -> None:
    """A server slow to answer on a kept-alive connection has not closed it: the request is not
    sent to it a second time."""

    async def stall_on_the_second(peer: Peer) -> None:
        await peer.read_request()
        peer.respond()
        await peer.read_request()
        assert await peer.read_request() is None  # no answer: the client gives up and closes

    transport = lean()
    async with Server(stall_on_the_second) as server:
        await fetch(transport, server.url)
        with pytest.raises(httpx.ReadTimeout):
            await fetch(transport, server.url, method="POST", content=b"payload", read=0.1)
        await server.peers[0].eof.wait()
        assert server.requests() == [2]


async def test_a_streamed_body_is_not_sent_twice(lean: MakeTransport) -> None:
    """A body from an iterator cannot be replayed: its request fails instead."""

    async def drop_the_second(peer: Peer) -> None:
        await peer.read_request()
        peer.respond()
        await peer.read_request()

    async def parts() -> AsyncIterator[bytes]:
        yield b"pay"
        yield b"load"

    transport = lean()
    async with Server(drop_the_second) as server:
        await fetch(transport, server.url)
        with pytest.raises(httpx.RemoteProtocolError):
            await fetch(transport, server.url, method="POST", content=parts())
        assert server.requests() == [2]


async def test_connection_close_is_not_pooled(lean: MakeTransport) -> None:
    async def close_after_the_client(peer: Peer) -> None:
        # Answers with Connection: close but leaves the closing to the client.
        await peer.read_request()
        peer.respond(b"bye", "Connection: close")
        assert await peer.read_request() is None

    transport = lean()
    async with Server(close_after_the_client) as server:
        assert (await fetch(transport, server.url)).content == b"bye"
        assert transport.idle_connections == 0
        await server.peers[0].eof.wait()  # the client closed it
        await until(lambda: transport.open_connections == 0)
        assert (await fetch(transport, server.url)).headers["x-conn"] == "2"
        assert server.requests() == [1, 1]


# -- connecting -------------------------------------------------------------------------------


async def test_a_connect_the_upstream_never_answers_times_out(lean: MakeTransport) -> None:
    """A listener whose accept queue is full leaves the SYN unanswered: connect_s bounds it, and
    the slot the connect held is free again (every transport: test_transport_stalls.py)."""
    transport = lean()
    with unanswered() as url:
        timeout = {"connect": 0.05, "read": 5.0, "write": 5.0, "pool": 5.0}
        with pytest.raises(httpx.ConnectTimeout):
            await transport.handle_async_request(
                httpx.Request("GET", url, extensions={"timeout": timeout})
            )
    assert transport.open_connections == 0


async def test_a_loop_late_throughout_gives_a_dead_upstream_one_grace_not_its_timeout_again(
    lean: MakeTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loop running every timer late (loaded: each round held up 1 s) is not a stall per
    timer: the connect's grace for a late timer is given once, so an upstream that never
    answers times out about `connect_s` after its start (and a few rounds of the lag), not
    over twice that as a grace taken again at each late timer would. Times are the loop's
    own clock, moved by the laggard, not the wall's."""
    transport = lean()
    loop = asyncio.get_running_loop()
    lag = [0.0]
    real_time = loop.time
    monkeypatch.setattr(loop, "time", lambda: real_time() + lag[0])
    rounds: list[asyncio.Handle] = []

    def laggard() -> None:  # as a loop whose every round holds it 1 s
        lag[0] += 1.0
        rounds.append(loop.call_soon(laggard))

    with unanswered() as url:
        timeout = {"connect": 10.5, "read": 5.0, "write": 5.0, "pool": 5.0}
        request = httpx.Request("GET", url)
        request.extensions["timeout"] = timeout
        started = loop.time()
        rounds.append(loop.call_soon(laggard))
        try:
            with pytest.raises(httpx.ConnectTimeout):
                await transport.handle_async_request(request)
        finally:
            rounds[-1].cancel()
    # connect_s and a few rounds' lag (the late timer, its one grace, the cancel): a grace
    # taken again at each late timer made it ~35.
    assert loop.time() - started < 10.5 + 8
    assert transport.open_connections == 0
