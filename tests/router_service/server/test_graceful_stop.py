"""A stopping router first goes NOT_SERVING and, while clients watch its health (or always, when
the config sets it), keeps taking calls for `server.drain_delay_s` (server/_server.py,
server/_health.py); `RouterClient` watches
(client-side health checking, clients/_base.py), so its calls move to the other replicas instead
of meeting the stop."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients import RouterClient, RouterError
from clients.switchboard.v1 import chat_pb2, router_service_pb2_grpc
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.server._health import WatchedHealth
from router_service.state import MemoryStateStore
from tests.conftest import StartRouter, base_config

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _chat() -> pb.ChatRequest:
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")
    return pb.ChatRequest(params=chat_pb2.ChatParams(model="chain", messages=[message]))


@pytest.mark.parametrize(
    ("delay", "watched", "waited"),
    [
        (None, False, 0),  # the default is for watching clients: a quick stop without them
        (None, True, 0.25),
        (7, False, 7),  # set: waited for balancers that poll health rather than watch it
        (7, True, 7),
        (0, False, 0),
    ],
)
async def test_the_drain_delay_is_waited_for_watching_clients_or_when_set(
    fake: FakeUpstream,
    start_router: StartRouter,
    delay: float | None,
    watched: bool,
    waited: float,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    server = {"port": 0} if delay is None else {"port": 0, "drain_delay_s": delay}
    router = await start_router(base_config(fake.base_url, server=server), clock=clock)
    before = clock.monotonic()
    async with grpc.aio.insecure_channel(router.server.address) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        if watched:
            assert (await watch.read()).status == SERVING  # the stream is open at the router
        else:
            watch.cancel()
        with caplog.at_level(logging.INFO, logger="switchboard.router"):
            # A long grace: the watch, which never ends by itself, must not hold the stop.
            async with asyncio.timeout(10):
                await router.server.shutdown(grace=60)
        if watched:
            assert (await watch.read()).status == NOT_SERVING
            assert await watch.code() == grpc.StatusCode.OK  # ended by the router, cleanly
    assert router.server.health_watchers == 0
    assert clock.monotonic() - before == waited
    assert (f"new calls for {waited:g}s more" in caplog.text) is bool(waited)


async def test_calls_move_to_the_other_replica_when_one_stops(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    draining = base_config(fake.base_url, server={"port": 0, "drain_delay_s": 1})
    # Only the one that stops drains: set on both, the other's teardown waited it too.
    stopping, staying = await start_router(draining), await start_router(base_config(fake.base_url))
    targets = [stopping.server.address, staying.server.address]
    failures: list[RouterError] = []
    answered = 0
    busy, stopped = asyncio.Event(), asyncio.Event()

    async def caller(client: RouterClient) -> None:
        nonlocal answered
        while not stopped.is_set() or answered < 400:
            try:
                await client.chat(_chat(), timeout=10)
                answered += 1
                if answered == 100:  # both replicas answering
                    busy.set()
            except RouterError as exc:
                failures.append(exc)
                return

    async with RouterClient(targets) as client:
        callers = [asyncio.create_task(caller(client)) for _ in range(32)]
        await asyncio.wait_for(busy.wait(), 30)
        await stopping.server.shutdown(grace=2)
        stopped.set()
        await asyncio.gather(*callers)
    assert failures == [], [f"{e.grpc_code.name}: {e}" for e in failures[:3]]


class _SlowReleases(MemoryStateStore):
    """A store whose lease releases take a while (a Redis round trip, here 50 ms), which says
    in what order things happened."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    async def release(self, resource: str, lease_id: str) -> None:
        await asyncio.sleep(0.05)  # the store's latency: what the stop must wait for
        await super().release(resource, lease_id)
        self.events.append("released")

    async def aclose(self) -> None:
        self.events.append("closed")
        await super().aclose()


async def test_a_stop_lets_cancelled_calls_finish_their_cleanup_before_closing_the_store(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """A call cut at the end of the grace still gives its lease back (a round trip to the
    store) before the store closes: closed first, the release failed on Redis, the key stayed
    held until its TTL, and the process exited with the call's task still pending (grpc logged
    its CancelledError as a traceback)."""
    store = _SlowReleases()
    router = await start_router(base_config(fake.base_url), store=store)
    fake.state.set_scenario(Scenario(stall_after_chunks=2))  # only the stop ends this stream
    request = pb.ChatStreamRequest(params=_chat().params)
    async with grpc.aio.insecure_channel(router.server.address) as channel:
        call = router_service_pb2_grpc.RouterServiceStub(channel).ChatStream(request)
        assert (await call.read()).WhichOneof("event") == "route"
        assert await router.leases_held(settled=False) == 1
        await router.server.shutdown(grace=0.05)
        with pytest.raises(grpc.aio.AioRpcError):
            while await call.read() is not grpc.aio.EOF:
                pass
    assert store.events == ["released", "closed"]
    handlers = [t for t in asyncio.all_tasks() if "RouterService/ChatStream" in t.get_name()]
    assert handlers == []  # no call's task outlives the stop


async def test_a_watch_that_comes_back_during_the_stop_is_told_not_serving() -> None:
    """A client watching again once the router ended the watches (its stop under way) hears
    NOT_SERVING before its stream ends: ended OK with nothing said, it kept the last status it
    had heard (SERVING, for a watch that began before the stop) and sent its calls there."""
    health = WatchedHealth()
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        await health.enter_graceful_shutdown()
        health.end_watches()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
            said = [answer.status async for answer in watch]
            assert await watch.code() == grpc.StatusCode.OK
        assert said == [NOT_SERVING]
        assert health.watchers == 0
    finally:
        await server.stop(0)
