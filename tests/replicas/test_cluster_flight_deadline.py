"""`cache.coalesce: cluster`: a unary call on replica B waiting for another replica's flight of
the same request (its lease in Redis, left by a replica that died) stops at its own deadline
(DEADLINE_EXCEEDED, on the router's clock), as a stream reading another replica's flight log
does (test_cluster_stream_deadline.py) and as a follower of its own replica's flight does: it
waited what the lease had left (up to `flight_ttl_s`), past its deadline. Its wait is closed;
nothing was asked upstream; a call after it with time enough waits the lease out and asks."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from clients.switchboard.v1 import routing_pb2
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.state import Landing
from tests.conftest import StartRouter
from tests.replicas.harness import ask, two_replicas
from tests.replicas.test_cluster_flights import (
    cluster_config,
    cluster_heard,
    leave_a_dead_lease,
    settled,
    until,
    waiting_on_redis,
)

pytestmark = pytest.mark.timeout(60)
MISS = routing_pb2.CACHE_STATUS_MISS
LEASE_S = 300.0


async def _waiting(clock: ManualClock, left_s: float, what: str) -> None:
    """Until a wait ending `left_s` from now is under way on the clock (its claim answered: the
    clock may move)."""
    ends = pytest.approx(clock.monotonic() + left_s, abs=1.0)
    await until(lambda: any(w.when() == ends for w in clock.windows), what)


async def test_a_call_waiting_for_a_dead_replicas_flight_stops_at_its_own_deadline(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    clock = ManualClock(time.time())
    config = cluster_config(fake, redis_url, redis_prefix, flight_ttl_s=LEASE_S)
    a, b = await two_replicas(start_router, config, clock)
    await leave_a_dead_lease(b, redis_url, redis_prefix, clock, LEASE_S)

    hurried = asyncio.ensure_future(b.stub.Chat(ask(), timeout=60))
    await _waiting(clock, 60.0, "B's call waiting for the dead flight, until its deadline")
    clock.advance(61)  # past B's deadline, on the routers' clock; the lease has 239 s left
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await asyncio.wait_for(hurried, 10)  # it waited the lease's 300 s
    assert late.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    await until(lambda: waiting_on_redis(b) == 0, "B's wait closed")
    assert fake.state.calls() == [] and cluster_heard(b) == {}
    assert b.runtime.cache.flights.open == 0

    patient = asyncio.ensure_future(b.stub.Chat(ask()))  # no deadline: waits the lease out
    await _waiting(clock, LEASE_S - 61, "the next call waiting for what the lease has left")
    clock.advance(LEASE_S)
    answer = await asyncio.wait_for(patient, 10)
    assert answer.route.cache == MISS and len(fake.state.calls()) == 1
    assert cluster_heard(b) == {Landing.LAPSED: 1}
    await settled(redis_url, redis_prefix, a, b)
