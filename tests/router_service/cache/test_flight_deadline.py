"""A cached call with a deadline that follows an identical call's flight (cache/_flights.py)
whose own call has none: it waited for the leader's answer past its own deadline, as long as
the leader took. It gives up at its deadline (DEADLINE_EXCEEDED, the edge's 504), and the
flight goes on for the leader and the other followers."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from clients.switchboard.v1 import routing_pb2
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter, base_config
from tests.helpers import eventually
from tests.router_service.auth.helpers import chat

pytestmark = pytest.mark.timeout(30)
HIT, MISS = routing_pb2.CACHE_STATUS_HIT, routing_pb2.CACHE_STATUS_MISS


async def test_a_follower_gives_up_at_its_own_deadline_and_the_flight_goes_on(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    config = base_config(fake.base_url, cache={"enabled": True})
    for provider in config["providers"].values():  # the leader's call outlasts the follower's
        provider["timeouts"] = {"first_chunk_s": 1000, "total_s": 1000}
    router = await start_router(config, clock=clock)
    flights = router.runtime.cache.flights
    fake.state.hold()
    leader = asyncio.ensure_future(router.stub.Chat(chat()))  # no deadline
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the leader upstream")
    hurried = asyncio.ensure_future(router.stub.Chat(chat(), timeout=60))
    patient = asyncio.ensure_future(router.stub.Chat(chat()))

    async def both_following() -> bool:
        return flights.following == 2

    await eventually(both_following, what="both on the leader's flight")
    clock.advance(61)  # past the hurried one's deadline (on the router's clock)
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await asyncio.wait_for(hurried, 10)  # it waited on, as long as the leader took
    assert late.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert flights.following == 1 and flights.open == 1  # the flight flies on
    fake.state.release()
    answers = await asyncio.gather(leader, patient)
    assert [a.route.cache for a in answers] == [MISS, HIT]
    assert len(fake.state.calls()) == 1
