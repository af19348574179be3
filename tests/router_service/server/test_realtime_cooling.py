"""A Realtime session opened while every realtime deployment of its model cools. The edge opens
every session with no deadline (a session lasts as long as its caller talks): no deadline there
is no caller's patience, and the edge has not answered the WebSocket's handshake meanwhile (a
client's own open timeout, 10 s in the `websockets` library, gives up first, its stream slot
held until the wait ends, and the session then opened upstream for nobody). It is tried at once,
as before the cooldown wait of a call with no deadline (README, Global cooldowns)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from clients import RouterClient, RouterError
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.helpers import advance_until_done
from tests.router_service.server.test_realtime_rpc import realtime_config

pytestmark = pytest.mark.timeout(30)


async def _opened(client: RouterClient) -> str:
    """The deployment of a session opened with no deadline, as the edge opens one."""
    async with client.realtime(timeout=None) as session:
        await session.send(pb.RealtimeRequest(open=pb.RealtimeOpen(model="voice")))
        route = (await anext(session)).route
        await session.send(pb.RealtimeRequest(close=pb.RealtimeClose(code=1000)))
        return route.deployment


async def test_with_no_deadline_a_session_is_not_held_for_the_cooldown(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    router = await start_router(realtime_config(fake), clock=clock)
    fake.state.set_scenario(Scenario.server_error(503, times=2))
    async with RouterClient(router.server.address) as client:
        with pytest.raises(RouterError) as refused:  # both handshakes refused: both cool
            await _opened(client)
        assert refused.value.grpc_code is grpc.StatusCode.UNAVAILABLE
        started = clock.now()
        opening = asyncio.ensure_future(_opened(client))
        await advance_until_done(clock, 0.1, opening, what="the session, opened")
        assert await opening == "alpha/rt-a"  # cooled first: tried at once, it answers now
    assert clock.now() - started < 15.0  # cooldowns.transient_s: not waited out
