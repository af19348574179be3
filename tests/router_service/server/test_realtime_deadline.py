"""A gRPC Realtime caller's deadline ends its session the router's way: before gRPC cancels the
call (a bare DEADLINE_EXCEEDED that says nothing, the upstream socket and key lease left to the
cancellation's cleanup), the router closes the upstream socket, releases the key lease and ends
the call DEADLINE_EXCEEDED with its details."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from clients import RouterClient, RouterError
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.router_service.server.test_realtime_rpc import realtime_config

pytestmark = pytest.mark.timeout(30)


async def test_a_sessions_deadline_ends_it_with_a_typed_status_and_the_upstream_closed(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    router = await start_router(realtime_config(fake), clock=clock)
    async with RouterClient(router.server.address) as client:
        async with client.realtime(timeout=25) as session:  # gRPC's own, far off on real time
            await session.send(pb.RealtimeRequest(open=pb.RealtimeOpen(model="voice")))
            assert (await anext(session)).route.deployment == "alpha/rt-a"
            assert "session.created" in (await anext(session)).event_json
            clock.advance(25)  # the router's clock reaches the deadline
            with pytest.raises(RouterError) as ended:
                async with asyncio.timeout(10):  # well before gRPC's own deadline
                    rest = [message async for message in session]
                    raise AssertionError(f"ended without a status: {rest}")
    details = ended.value.details
    assert ended.value.grpc_code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert details.reason == "DEADLINE_EXCEEDED" and not details.bare
    assert "deadline" in details.message
    (call,) = await fake.state.wait_for_count(1, path="/v1/realtime")
    assert call.outcome == "ok"  # the router closed the upstream socket itself
    assert await router.leases_held() == 0
