"""`cache.coalesce: cluster`: a stream on replica B that reads replica A's flight log (an
identical stream A streams from upstream) stops at its own deadline (DEADLINE_EXCEEDED, on the
router's clock), as a follower of its own replica's flight does (`Flights.follow`,
`StreamFlight.read`): it read on as long as A's stream took, whose call may have no deadline.
A's stream goes on, and is kept."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.replicas.harness import two_replicas
from tests.replicas.test_cluster_flights import cluster_config, until, waiting_on_redis
from tests.replicas.test_cluster_streams import events, statuses, streamed

pytestmark = pytest.mark.timeout(60)
MISS = routing_pb2.CACHE_STATUS_MISS


async def _read(replica: RouterHandle, request: pb.ChatStreamRequest, **call: Any) -> list[Any]:
    return [event async for event in replica.stub.ChatStream(request, **call)]


async def test_a_stream_reading_another_replicas_flight_stops_at_its_own_deadline(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    config = cluster_config(fake, redis_url, redis_prefix)
    for provider in config["providers"].values():  # A's stream outlasts B's deadline
        provider["timeouts"] = {"first_chunk_s": 1000, "total_s": 1000, "stall_s": 1000}
    clock = ManualClock()
    a, b = await two_replicas(start_router, config, clock)
    fake.state.hold()
    leader = asyncio.create_task(events(a, streamed()))  # no deadline
    await until(lambda: fake.state.held == 1, "A's stream upstream, held there")
    hurried = asyncio.create_task(_read(b, streamed(), timeout=60))
    await until(lambda: waiting_on_redis(b) == 1, "B's stream reading A's flight log")
    clock.advance(61)  # past B's deadline, on the routers' clock

    with pytest.raises(grpc.aio.AioRpcError) as late:
        await asyncio.wait_for(hurried, 10)  # it read on, as long as A's stream took
    assert late.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    await until(lambda: waiting_on_redis(b) == 0, "B's watch of A's flight closed")
    fake.state.release()
    first = await leader
    assert statuses(first) == (MISS, MISS)
    assert len(fake.state.calls()) == 1
