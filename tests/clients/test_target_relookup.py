"""Router addresses given as host names in a list are looked up again when a call can reach
none of them: replicas that moved (pods rescheduled, DNS changed) are found, at most every
`RELOOKUP_S` seconds. The client kept dialling the addresses of its first lookup for its life.

Two real routers on loopback, on one port: router A on 127.0.0.1, router B on 127.0.0.2; the
names point at A, A stops, the names now point at B. Through both clients, unary calls and
streams, with a resolver the test changes (`RouterTarget`'s `lookup`) and a manual clock."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients import RELOOKUP_S, RouterClient, RouterError, RouterTarget, SyncRouterClient
from clients.switchboard.v1 import router_service_pb2_grpc
from clients.switchboard.v1.router_service_pb2 import RealtimeRequest
from router_service.clock import ManualClock
from tests.clients.fake_router import (
    SERVER_OPTIONS,
    FakeRouter,
    chat_request,
    serving,
    stream_request,
)
from tests.helpers import eventually, serve_grpc

pytestmark = pytest.mark.timeout(60)

A_IP, B_IP = "127.0.0.1", "127.0.0.2"


@dataclass
class Names:
    """The test's DNS: each host name's address, changed as replicas move; what was asked."""

    ips: dict[str, str]
    asked: list[str] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.ips:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [self.ips[host]]

    def point_at(self, ip: str) -> None:
        self.ips = dict.fromkeys(self.ips, ip)


@dataclass
class Moving:
    """Router A (up until `stop_a`), router B on the same port, the names and the clock."""

    a: FakeRouter
    b: FakeRouter
    names: Names
    clock: ManualClock
    stop_a: Callable[[], Awaitable[None]]
    port: int

    def target(self, names: Names | None = None) -> RouterTarget:
        """Both routers' names, looked up in `names` (else the test's own)."""
        addresses = [f"router-a:{self.port}", f"router-b:{self.port}"]
        lookup = self.names if names is None else names
        return RouterTarget(addresses, lookup=lookup, clock=self.clock.monotonic)

    async def move_to_b(self, names: Names | None = None) -> None:
        """A stops, the names (`names`, else the test's own) give B, and the clock passes the
        time a target looks its names up again after."""
        await self.stop_a()
        (self.names if names is None else names).point_at(B_IP)
        self.clock.advance(RELOOKUP_S)


@asynccontextmanager
async def moving_routers() -> AsyncIterator[Moving]:
    async with AsyncExitStack() as stack:
        b, b_target = await stack.enter_async_context(serving("b", host=B_IP))
        port = int(b_target.rpartition(":")[2])
        a_stack = AsyncExitStack()
        a, _ = await a_stack.enter_async_context(serving("a", host=A_IP, port=port))
        stack.push_async_callback(a_stack.aclose)
        names = Names({"router-a": A_IP, "router-b": A_IP})
        yield Moving(a, b, names, ManualClock(), a_stack.aclose, port)


def _unreachable(error: RouterError) -> None:
    assert error.details.code is grpc.StatusCode.UNAVAILABLE
    assert error.details.bare  # gRPC's own: no router answered


async def on_b(client: RouterClient | SyncRouterClient, port: int) -> None:
    """Wait for the async client's relookup, which its failed call started and did not wait
    for, to move it to B's address."""

    async def moved() -> bool:
        return client.target == f"ipv4:{B_IP}:{port}"

    await eventually(moved, what="the client on B's address")


async def test_the_async_client_finds_moved_routers_after_a_call_reaches_none() -> None:
    async with moving_routers() as moving:
        client = RouterClient(moving.target(), ready_wait_s=0)
        async with client:
            assert (await client.chat(chat_request())).completion.id == "a"
            assert moving.names.asked == ["router-a", "router-b"]
            await moving.stop_a()
            moving.names.point_at(B_IP)
            with pytest.raises(RouterError) as soon:  # within RELOOKUP_S of the first lookup
                await client.chat(chat_request())
            _unreachable(soon.value)
            assert len(moving.names.asked) == 2  # not looked up again yet
            moving.clock.advance(RELOOKUP_S)
            with pytest.raises(RouterError) as failed:
                await client.chat(chat_request())
            _unreachable(failed.value)
            await on_b(client, moving.port)  # looked up again, after the call's error
            assert len(moving.names.asked) == 4
            assert (await client.chat(chat_request())).completion.id == "b"
        assert moving.b.calls == 1


async def test_an_async_stream_that_reaches_no_router_looks_the_names_up_again() -> None:
    async with moving_routers() as moving:
        async with RouterClient(moving.target(), ready_wait_s=0) as client:
            assert (await client.chat(chat_request())).completion.id == "a"
            await moving.move_to_b()
            with pytest.raises(RouterError) as failed:
                async with client.chat_stream(stream_request()) as stream:
                    await anext(stream)
            _unreachable(failed.value)
            await on_b(client, moving.port)
            async with client.chat_stream(stream_request()) as stream:
                chunks = [message async for message in stream]
        assert chunks[0].chunk.choices[0].delta.text == "Hel"
        assert moving.b.calls == 1


async def test_the_blocking_client_finds_moved_routers_after_a_call_reaches_none() -> None:
    async with moving_routers() as moving:
        client = SyncRouterClient(moving.target(), ready_wait_s=0)
        with client:
            first = await asyncio.to_thread(client.chat, chat_request())
            assert first.completion.id == "a"
            await moving.move_to_b()
            with pytest.raises(RouterError) as failed:
                await asyncio.to_thread(client.chat, chat_request())
            _unreachable(failed.value)
            await on_b(client, moving.port)
            after = await asyncio.to_thread(client.chat, chat_request())
            assert after.completion.id == "b"

            def streamed() -> list[str]:
                with client.chat_stream(stream_request()) as stream:
                    return [str(message.WhichOneof("event")) for message in stream]

            assert (await asyncio.to_thread(streamed))[-1] == "summary"
        assert moving.b.calls == 2


async def test_a_blocking_stream_that_reaches_no_router_looks_the_names_up_again() -> None:
    async with moving_routers() as moving:
        client = SyncRouterClient(moving.target(), ready_wait_s=0)
        with client:
            assert (await asyncio.to_thread(client.chat, chat_request())).completion.id == "a"
            await moving.move_to_b()

            def streamed() -> list[str]:
                with client.chat_stream(stream_request()) as stream:
                    return [str(message.WhichOneof("event")) for message in stream]

            with pytest.raises(RouterError) as failed:
                await asyncio.to_thread(streamed)
            _unreachable(failed.value)
            await on_b(client, moving.port)
            assert (await asyncio.to_thread(streamed))[-1] == "summary"
        assert moving.b.calls == 1


class Health(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    """A router's health as the clients' channels watch it (`healthCheckConfig`): its status,
    set by the test, and the watches open now (one per channel connected: a closed channel's
    ends)."""

    def __init__(self) -> None:
        self.watching: list[asyncio.Queue[int]] = []

    def set(self, status: int) -> None:
        for watch in self.watching:
            watch.put_nowait(status)

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        statuses: asyncio.Queue[int] = asyncio.Queue()
        statuses.put_nowait(health_pb2.HealthCheckResponse.SERVING)
        self.watching.append(statuses)
        try:
            while True:
                yield health_pb2.HealthCheckResponse(status=await statuses.get())
        finally:
            self.watching.remove(statuses)


@asynccontextmanager
async def watched(
    name: str, host: str, port: int = 0
) -> AsyncIterator[tuple[FakeRouter, Health, int]]:
    router, health = FakeRouter(name), Health()
    async with serve_grpc(
        (router_service_pb2_grpc.add_RouterServiceServicer_to_server, router),
        (health_pb2_grpc.add_HealthServicer_to_server, health),
        options=SERVER_OPTIONS,
        host=host,
        port=port,
    ) as target:
        yield router, health, int(target.rpartition(":")[2])


@pytest.mark.parametrize("dropped", [False, True], ids=["closed", "dropped"])
async def test_a_blocking_stream_under_way_ends_on_the_replaced_channel_then_it_closes(
    dropped: bool,
) -> None:
    """Router A says NOT_SERVING (stopping: its streams go on, new calls go elsewhere): a new
    call reaches no router, the names now give B, the next call goes there; the stream under
    way on A's channel goes on, and that channel closes once it has ended (the blocking
    client kept every replaced channel open until it closed): closed, or dropped unclosed (a
    `break` out of its loop; a long-lived service kept a channel per move open)."""
    async with watched("b", B_IP) as (b, _, port), watched("a", A_IP, port) as (a, a_health, _):
        names, clock = Names({"router-a": A_IP, "router-b": A_IP}), ManualClock()
        target = RouterTarget(
            [f"router-a:{port}", f"router-b:{port}"], lookup=names, clock=clock.monotonic
        )
        client = SyncRouterClient(target, ready_wait_s=0)
        with client:
            stream = await asyncio.to_thread(client.chat_stream, stream_request("hang"))
            first = await asyncio.to_thread(next, stream)
            assert first.chunk.choices[0].delta.text == "Hel"
            a_health.set(health_pb2.HealthCheckResponse.NOT_SERVING)
            names.point_at(B_IP)
            clock.advance(RELOOKUP_S)

            async def a_not_serving() -> bool:
                try:
                    await asyncio.to_thread(client.chat, chat_request())
                except RouterError as failed:
                    _unreachable(failed)
                    return True
                return False

            await eventually(a_not_serving, what="A's channel reaching no router")
            await on_b(client, port)
            assert (await asyncio.to_thread(client.chat, chat_request())).completion.id == "b"
            assert (await asyncio.to_thread(next, stream)).chunk.choices[0].delta.text == "lo"
            assert len(a_health.watching) == 1  # the stream's channel is open
            if dropped:
                del stream
                gc.collect()  # none is needed (nothing refers back to it): a guard
            else:
                await asyncio.to_thread(stream.close)

            async def a_channel_closed() -> bool:
                return not a_health.watching

            await eventually(a_channel_closed, what="the replaced channel closed")
            assert a.cancelled.is_set()
        assert b.calls == 1


@pytest.mark.parametrize("first", ["send", "done_writing"])
async def test_an_async_realtime_call_that_reaches_no_router_looks_the_names_up_again(
    first: str,
) -> None:
    """A Realtime session's send hears first that no router is reachable (the caller sends,
    then reads), or its `done_writing` (a caller with nothing to send): that call, too, has the
    names looked up again, as a read's failure does."""
    async with moving_routers() as moving:
        async with RouterClient(moving.target(), ready_wait_s=0) as client:
            assert (await client.chat(chat_request())).completion.id == "a"
            await moving.move_to_b()
            async with client.realtime() as session:
                with pytest.raises(RouterError) as failed:
                    if first == "send":
                        await session.send(RealtimeRequest())
                    else:
                        await session.done_writing()
            _unreachable(failed.value)
            await on_b(client, moving.port)
            assert (await client.chat(chat_request())).completion.id == "b"


@dataclass
class SlowNames(Names):
    """The test's DNS, whose lookups after the first hang until `answer` is set."""

    answer: threading.Event = field(default_factory=threading.Event)
    asked_again: threading.Event = field(default_factory=threading.Event)

    def __call__(self, host: str, port: int) -> list[str]:
        if len(self.asked) >= 2:
            self.asked_again.set()
            self.answer.wait(30)
        return super().__call__(host, port)


async def test_a_call_that_reaches_no_router_fails_without_waiting_for_the_lookup() -> None:
    """The relookup a failed call starts is not the call's to wait for: a slow DNS (seconds
    per query when a resolver is down) held its error back, past the call's deadline."""
    async with moving_routers() as moving:
        names = SlowNames({"router-a": A_IP, "router-b": A_IP})
        target = moving.target(names)
        async with RouterClient(target, ready_wait_s=0) as client:
            assert (await client.chat(chat_request())).completion.id == "a"
            await moving.move_to_b(names)
            failing = asyncio.ensure_future(client.chat(chat_request()))
            done, _ = await asyncio.wait({failing}, timeout=10)  # a hang guard
            names.answer.set()
            assert failing in done
            with pytest.raises(RouterError) as failed:
                failing.result()
            _unreachable(failed.value)
            assert await asyncio.to_thread(names.asked_again.wait, 10)
            await on_b(client, moving.port)
            assert (await client.chat(chat_request())).completion.id == "b"


async def test_a_blocking_call_that_reaches_no_router_fails_without_waiting_for_the_lookup() -> (
    None
):
    async with moving_routers() as moving:
        names = SlowNames({"router-a": A_IP, "router-b": A_IP})
        target = moving.target(names)
        with SyncRouterClient(target, ready_wait_s=0) as client:
            assert (await asyncio.to_thread(client.chat, chat_request())).completion.id == "a"
            await moving.move_to_b(names)
            failing = asyncio.ensure_future(asyncio.to_thread(client.chat, chat_request()))
            done, _ = await asyncio.wait({failing}, timeout=10)  # a hang guard
            names.answer.set()
            await asyncio.wait({failing})
            assert failing in done
            with pytest.raises(RouterError) as failed:
                failing.result()
            _unreachable(failed.value)
            assert await asyncio.to_thread(names.asked_again.wait, 10)
            await on_b(client, moving.port)
            assert (await asyncio.to_thread(client.chat, chat_request())).completion.id == "b"
