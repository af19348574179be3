"""`cache.coalesce: cluster` for streams (cache/_cluster_stream.py) on two router replicas
sharing one real Redis, the fake upstream holding its answers until the test lets them go:
identical streams on both make one upstream call, replica B's stream reading A's flight log
live (a HIT); a stream on A that fails before its first chunk lets B ask upstream itself."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.state import Landing
from tests.conftest import RouterHandle, StartRouter
from tests.replicas.harness import ask, two_replicas
from tests.replicas.test_cluster_flights import (
    cluster_config,
    cluster_heard,
    settled,
    until,
    waiting_on_redis,
)

HIT, MISS = routing_pb2.CACHE_STATUS_HIT, routing_pb2.CACHE_STATUS_MISS


def streamed(text: str = "hi") -> pb.ChatStreamRequest:
    return pb.ChatStreamRequest(params=ask(text=text).params)


async def events(replica: RouterHandle, request: pb.ChatStreamRequest) -> list[Any]:
    return [event async for event in replica.stub.ChatStream(request)]


def chunks(stream: list[Any]) -> list[Any]:
    return [e.chunk for e in stream if e.WhichOneof("event") == "chunk"]


def statuses(stream: list[Any]) -> tuple[int, int]:
    (route,) = (e.route for e in stream if e.WhichOneof("event") == "route")
    (summary,) = (e.summary for e in stream if e.WhichOneof("event") == "summary")
    return route.cache, summary.route.cache


async def held_streams(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> tuple[RouterHandle, RouterHandle, asyncio.Task[list[Any]], asyncio.Task[list[Any]]]:
    """A's stream upstream (held there), B's reading A's flight log."""
    a, b = await two_replicas(start_router, cluster_config(fake, redis_url, redis_prefix))
    fake.state.hold()
    leader = asyncio.create_task(events(a, streamed()))
    await until(lambda: fake.state.held == 1, "A's stream upstream, held there")
    follower = asyncio.create_task(events(b, streamed()))
    await until(lambda: waiting_on_redis(b) == 1, "B's stream reading A's flight log")
    return a, b, leader, follower


async def test_identical_streams_on_two_replicas_make_one_upstream_call(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    a, b, leader, follower = await held_streams(fake, start_router, redis_url, redis_prefix)
    fake.state.release()
    first, second = await asyncio.gather(leader, follower)
    assert len(fake.state.calls()) == 1
    assert statuses(first) == (MISS, MISS) and statuses(second) == (HIT, HIT)
    assert chunks(second) == chunks(first) != []
    assert cluster_heard(b) == {Landing.KEPT: 1} and cluster_heard(a) == {}
    await settled(redis_url, redis_prefix, a, b)  # A's lease landed, B's watch closed
    assert b.runtime.cache.stream_flights.open == a.runtime.cache.stream_flights.open == 0


async def test_a_stream_failing_before_its_first_chunk_lets_the_other_replica_ask(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    fake.state.set_scenario(Scenario(status=400, times=1))  # A's only: not retried
    a, b, leader, follower = await held_streams(fake, start_router, redis_url, redis_prefix)
    fake.state.release()
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await leader
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    stream = await follower  # asked upstream itself: its own whole answer
    assert statuses(stream) == (MISS, MISS) and chunks(stream) != []
    assert len(fake.state.calls()) == 2
    assert cluster_heard(b) == {Landing.EMPTY: 1}
    await settled(redis_url, redis_prefix, a, b)
