"""A realtime session's life at the router: it keeps its key lease and its caller's stream slot
past their TTL (`server.lease_ttl_s`; the runtime's one renewer, engine/_stream_holds.py, renews
them every third of it, on the injected clock: no task per session), and a dead upstream that
no longer answers pings (`streams.realtime_ping_s`) ends it as an upstream error instead of
holding those slots forever."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiohttp import web

from clients import RouterClient
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.engine._stream_holds import RENEWER
from router_service.fake_upstream import FakeUpstream
from router_service.state import MemoryStateStore
from tests.conftest import StartRouter
from tests.helpers import eventually, serve_app
from tests.router_service.auth.helpers import client
from tests.router_service.server.test_realtime_rpc import (
    KEY,
    ask_then_close,
    open_session,
    realtime_config,
    refused_a_second,
)

pytestmark = pytest.mark.timeout(30)


class CountingRenewals(MemoryStateStore):
    """The memory store, counting the renewals that reached it."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.renewals: list[str] = []

    async def renew(self, resource: str, lease_id: str, ttl_s: float) -> bool:
        self.renewals.append(resource)
        return await super().renew(resource, lease_id, ttl_s)


def renewers() -> list[str]:
    """The names of the tasks that renew something."""
    return sorted(task.get_name() for task in asyncio.all_tasks() if "renew" in task.get_name())


async def test_a_session_keeps_its_slots_past_their_ttl_until_it_ends(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    store = CountingRenewals(clock)
    caller = client("svc", KEY, max_concurrent_streams=1)
    config = realtime_config(
        fake, auth={"clients": [caller]}, server={"port": 0, "lease_ttl_s": 30}
    )
    router = await start_router(config, clock=clock, store=store)
    pool = router.runtime.pools["alpha"]
    slots = ["client:svc:streams", pool.slot_name(pool.keys[0])]
    async with RouterClient(router.server.address) as grpc_client:
        session, route = await open_session(grpc_client)
        assert route.deployment == "alpha/rt-a"
        assert "session.created" in (await anext(session)).event_json
        for period in range(1, 10):  # 90 s: three times the TTL, one renewal every 10 s
            clock.advance(10)

            async def renewed(done: int = 2 * period) -> bool:
                return len(store.renewals) >= done

            await eventually(renewed, what=f"renewal {period}")
        assert sorted(set(store.renewals)) == sorted(slots)
        assert await store.held(slots) == [1, 1]
        assert renewers() == [RENEWER]  # the runtime's, for every stream: none of the session
        await refused_a_second(grpc_client, clock)  # the limit still counts the open session
        await ask_then_close(session)  # which still answers

    async def ended() -> bool:
        return await store.held(slots) == [0, 0]

    await eventually(ended, what="the slots given back")
    renewals = len(store.renewals)
    clock.advance(10)  # the renewer's next wake finds nothing to renew, and ends

    async def no_renewer() -> bool:
        return not renewers()

    await eventually(no_renewer, what="the renewer ended")
    assert len(store.renewals) == renewals


async def test_a_graceful_stop_tells_each_session_to_reconnect_at_once(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(realtime_config(fake))
    async with RouterClient(router.server.address) as grpc_client:
        session, _ = await open_session(grpc_client)
        assert "session.created" in (await anext(session)).event_json
        # A grace longer than the test: the session must not hold the stop until its end.
        stopping = asyncio.create_task(router.server.shutdown(grace=60))
        rest = [message async for message in session]
        async with asyncio.timeout(10):
            await stopping
    assert [m.WhichOneof("message") for m in rest] == ["event_json", "close"]
    error = orjson.loads(rest[0].event_json)
    assert error["type"] == "error" and error["error"]["code"] == "server_restarting"
    assert (rest[1].close.code, rest[1].close.reason) == (1012, "service restart")
    (call,) = await fake.state.wait_for_count(1, path="/v1/realtime")
    assert call.outcome == "ok"  # the router closed the upstream socket itself
    assert not renewers()


async def _deaf_upstream(request: web.Request) -> web.WebSocketResponse:
    """A realtime upstream whose connection went half-open: it greets, then never answers a
    ping (nor anything else)."""
    socket = web.WebSocketResponse(autoping=False)
    await socket.prepare(request)
    await socket.send_str(orjson.dumps({"type": "session.created", "session": {}}).decode())
    async for _ in socket:  # pings arrive as messages here (no autoping): never answered
        pass
    return socket


async def test_an_upstream_that_stops_answering_pings_ends_the_session(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    app = web.Application()
    app.router.add_get("/v1/realtime", _deaf_upstream)
    async with serve_app(app) as url:
        # aiohttp's own timer on the loop's clock: the session ends ~75 ms after its greeting.
        config = realtime_config(fake, streams={"realtime_ping_s": 0.05})
        config["providers"]["alpha"]["base_url"] = f"{url}/v1"
        router = await start_router(config)
        async with RouterClient(router.server.address) as grpc_client:
            session, _ = await open_session(grpc_client)
            messages = [message async for message in session]
        assert await router.leases_held() == 0
    kinds = [m.WhichOneof("message") for m in messages]
    assert kinds == ["event_json", "event_json", "close"]
    error = orjson.loads(messages[1].event_json)
    assert error["type"] == "error" and error["error"]["code"] == "upstream_error"
    assert messages[-1].close.code == 1011


async def test_a_session_cancelled_again_while_it_ends_stops_renewing_its_slot(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """The session's handler cancelled once more while it ends (a server stop, a deadline on
    top of the caller's cancellation): the slot's renewal stops all the same, and the renewer
    with it (it renewed a slot given back every period, for as long as the router ran)."""
    clock = ManualClock()
    caller = client("svc", KEY, max_concurrent_streams=1)
    config = realtime_config(
        fake, auth={"clients": [caller]}, server={"port": 0, "lease_ttl_s": 30}
    )
    router = await start_router(config, clock=clock)
    handler_name = "HandleExceptions[/switchboard.v1.RouterService/Realtime]"
    async with RouterClient(router.server.address) as grpc_client:
        session, _ = await open_session(grpc_client)
        assert "session.created" in (await anext(session)).event_json
        (handler,) = [t for t in asyncio.all_tasks() if t.get_name() == handler_name]
        while not handler.done():  # cancelled at each step of its end
            handler.cancel()
            await asyncio.sleep(0)
    clock.advance(10)  # the renewer's next wake: nothing left to renew, it ends

    async def no_renewer() -> bool:
        return not renewers()

    await eventually(no_renewer, what="the renewer ended")


async def test_the_sessions_headers_come_before_the_upstream_handshake(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Its caller's read of the route then waits on a started call, which an interrupt ends
    freely; before, it waited for the headers, a wait gRPC's core leaks ~100 bytes of when a
    caller leaving mid-handshake (the edge's WebSocket caller) ends it
    (tests/http_edge/test_realtime_disconnect_native.py)."""
    router = await start_router(realtime_config(fake))
    fake.state.hold()  # the upstream handshake waits until released
    call = router.stub.Realtime()
    try:
        await call.write(pb.RealtimeRequest(open=pb.RealtimeOpen(model="voice")))
        await fake.state.wait_for(lambda: fake.state.held == 1, what="the handshake held")
        async with asyncio.timeout(10):  # a hang guard: they came before the handshake
            await call.initial_metadata()
        assert not call.done()  # the handshake is still under way
    finally:
        call.cancel()
        fake.state.release()
