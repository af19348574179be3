"""`cache.coalesce: cluster` on two router replicas sharing one real Redis, in front of one
fake upstream that holds its answers until the test lets them go: a burst of the same request
spread over both makes one upstream call, and the callers on the other replica are served it
as a HIT; a leader that fails or whose caller leaves lets the other replica ask itself; a lease
left by a replica that died ends the wait; a follower whose deadline passes stops only its
own wait. Nothing is left behind: no lease, watch, flight, task or subscription."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import openai
import pytest
import redis

from clients.switchboard.v1 import routing_pb2
from router_service.auth._issued import LOG_NAME as ISSUED_KEYS_LOG
from router_service.cache._keys import Kind, cache_key, document_name
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.state import Landing, RedisStateStore
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.helpers import eventually
from tests.replicas.harness import ask, redis_store, replica_config, two_replicas
from tests.replicas.redis_fixtures import keys_under
from tests.replicas.test_redis_connections import ours

HIT, MISS = routing_pb2.CACHE_STATUS_HIT, routing_pb2.CACHE_STATUS_MISS


def cluster_config(fake: FakeUpstream, redis_url: str, prefix: str, **cache: Any) -> dict[str, Any]:
    settings = {"enabled": True, "coalesce": "cluster", **cache}
    return replica_config(fake.base_url, redis_url, prefix, cache=settings)


async def until(condition: Any, what: str) -> None:
    async def holds() -> bool:
        return bool(condition())

    await eventually(holds, what=what)


def waiting_on_redis(replica: RouterHandle) -> int:
    """The replica's misses waiting for another replica's flight (its watches on the store, but
    the one its issued client keys' follower keeps open)."""
    board = redis_store(replica).flight_board
    return board.watching - board.watches_of(ISSUED_KEYS_LOG)


async def flight_name(replica: RouterHandle, kind: Kind = "chat") -> str:
    """The name (its document in Redis) of the flight of `ask()` (as a `kind` call) on `replica`."""
    generation = await replica.runtime.cache.generation("a")
    return document_name("", cache_key(kind, "", ask().params, generation))


async def leave_a_dead_lease(
    replica: RouterHandle, redis_url: str, prefix: str, clock: ManualClock, lease_s: float
) -> None:
    """What a replica that took the flight of `ask()` and died leaves in Redis: a lease nobody
    lands."""
    dead = RedisStateStore.from_url(redis_url, prefix=prefix, clock=clock)
    try:
        assert (await dead.claim_flight(await flight_name(replica), lease_s)).token
    finally:
        await dead.aclose()


def cluster_heard(replica: RouterHandle) -> dict[Landing, int]:
    cluster = replica.runtime.cache.cluster
    assert cluster is not None
    return dict(cluster.heard)


def subscribers(redis_url: str, channel: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        ((_, count),) = client.pubsub_numsub(channel)
        return int(count)
    finally:
        client.close()


async def settled(redis_url: str, prefix: str, *replicas: RouterHandle) -> None:
    """Every landing written: no lease left in Redis, no watch or flight on any replica."""
    for replica in replicas:
        await replica.runtime.afterwork.drain()
        assert waiting_on_redis(replica) == 0
        assert replica.runtime.cache.flights.open == 0
    assert not [key for key in keys_under(redis_url, prefix) if ":flt:" in key]


async def test_a_burst_over_two_replicas_makes_one_upstream_call(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    a, b = await two_replicas(start_router, cluster_config(fake, redis_url, redis_prefix))
    # Each replica's connections and subscriber are up. Not one question: B's would find A's
    # answer not yet written (A writes it after its caller has it) and wait for A's flight.
    await a.stub.Chat(ask(text="warm up A"))
    await b.stub.Chat(ask(text="warm up B"))
    await settled(redis_url, redis_prefix, a, b)
    tasks_before = ours(asyncio.all_tasks())
    fake.state.reset()
    fake.state.hold()
    leader = a.stub.Chat(ask())
    await until(lambda: fake.state.held == 1, "the leader upstream, held there")
    followers = [r.stub.Chat(ask()) for r in (b, a, b, a, b)]
    # B's first miss waits on Redis, B's other two on it, A's two on A's leader.
    await until(lambda: waiting_on_redis(b) == 1, "B's miss waiting for A's flight")
    await until(lambda: b.runtime.cache.flights.following == 2, "B's others waiting on it")
    await until(lambda: a.runtime.cache.flights.following == 2, "A's others waiting on A's")
    fake.state.release()
    first, *rest = await asyncio.gather(leader, *followers)
    assert len(fake.state.calls()) == 1
    assert first.route.cache == MISS
    assert [answer.route.cache for answer in rest] == [HIT] * 5
    assert {answer.completion.SerializeToString() for answer in rest} == {
        first.completion.SerializeToString()
    }
    assert cluster_heard(b) == {Landing.KEPT: 1} and cluster_heard(a) == {}
    await settled(redis_url, redis_prefix, a, b)
    pings = "FlightNotices._ping"  # one per replica's subscriber, which it watches
    tasks_after = ours(asyncio.all_tasks())
    assert [t for t in tasks_after if t != pings] == [t for t in tasks_before if t != pings]
    assert tasks_after.count(pings) == 2
    channel = redis_store(a).notices.channel
    assert subscribers(redis_url, channel) == 2  # one per replica, kept for the next flights
    for replica in (a, b):
        await replica.server.shutdown(grace=0.5)
    await until(lambda: subscribers(redis_url, channel) == 0, "no subscriber after the stop")


@pytest.mark.parametrize("ending", ["fails", "leaves"])
async def test_a_leader_that_fails_or_leaves_lets_the_other_replica_ask(
    ending: str, fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    a, b = await two_replicas(start_router, cluster_config(fake, redis_url, redis_prefix))
    if ending == "fails":  # the caller's fault: no retry, no other deployment
        fake.state.set_scenario(Scenario(status=400, times=1))
    fake.state.hold()
    leader = a.stub.Chat(ask())
    await until(lambda: fake.state.held == 1, "the leader upstream, held there")
    followers = [b.stub.Chat(ask()) for _ in range(2)]
    await until(lambda: waiting_on_redis(b) == 1, "B's miss waiting for A's flight")
    await until(lambda: b.runtime.cache.flights.following == 1, "B's other waiting on it")
    if ending == "fails":
        fake.state.release()
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await leader
        assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    else:
        leader.cancel()
        await until(lambda: fake.state.count() == 2, "B's own call upstream")
        fake.state.release()
    answers = await asyncio.gather(*followers)
    assert sorted(answer.route.cache for answer in answers) == sorted([MISS, HIT])
    assert len(fake.state.calls()) == 2  # the leader's, then B's own (its others wait on it)
    assert cluster_heard(b) == {Landing.EMPTY: 1}
    await settled(redis_url, redis_prefix, a, b)
    assert "ClusterFlights._renew" not in ours(asyncio.all_tasks())  # ended with A's call


LEFT_LEASE_S = 30.0


async def test_a_lease_left_by_a_replica_that_died_ends_the_wait(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    """On the replicas' clock: the lease ends when its time is up there, and B's wait with it
    (the test moves the clock once B waits: no real time passes)."""
    clock = ManualClock(time.time())
    config = cluster_config(fake, redis_url, redis_prefix, flight_ttl_s=LEFT_LEASE_S)
    a, b = await two_replicas(start_router, config, clock)
    await leave_a_dead_lease(b, redis_url, redis_prefix, clock, LEFT_LEASE_S)
    asking = b.stub.Chat(ask())  # waits what the lease had left, then leads and asks
    ends = pytest.approx(clock.monotonic() + LEFT_LEASE_S)  # what B's claim found left
    await until(lambda: any(w.when() == ends for w in clock.windows), "B waiting out the lease")
    clock.advance(LEFT_LEASE_S)
    answer = await asyncio.wait_for(asking, 15)
    assert answer.route.cache == MISS and len(fake.state.calls()) == 1
    assert cluster_heard(b) == {Landing.LAPSED: 1}
    await settled(redis_url, redis_prefix, a, b)  # B's own lease landed (KEPT)
    assert (await a.stub.Chat(ask())).route.cache == HIT
    assert len(fake.state.calls()) == 1
    assert not [key for key in keys_under(redis_url, redis_prefix) if ":flt:" in key]  # no lease
    # Its subscriber was made at start, for the issued client keys' notices, not by the hit.
    assert redis_store(a).notices.connected


async def test_a_follower_whose_deadline_passes_stops_only_its_own_wait(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    a, b = await two_replicas(start_router, cluster_config(fake, redis_url, redis_prefix))
    fake.state.hold()
    leader = a.stub.Chat(ask())
    await until(lambda: fake.state.held == 1, "the leader upstream, held there")
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await b.stub.Chat(ask(), timeout=0.2)
    assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await until(lambda: waiting_on_redis(b) == 0, "B's wait closed with its call")
    staying = b.stub.Chat(ask())
    await until(lambda: waiting_on_redis(b) == 1, "B's next miss waiting for A's flight")
    fake.state.release()
    first, second = await asyncio.gather(leader, staying)
    assert (first.route.cache, second.route.cache, len(fake.state.calls())) == (MISS, HIT, 1)
    await settled(redis_url, redis_prefix, a, b)


async def test_an_sdk_caller_on_the_other_replica_is_told_hit(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    redis_url: str,
    redis_prefix: str,
) -> None:
    """An embeddings backfill through two edges, one per replica, as the OpenAI SDK sees it."""
    a, b = await two_replicas(start_router, cluster_config(fake, redis_url, redis_prefix))
    edges = [await start_edge(replica) for replica in (a, b)]
    clients = [
        openai.AsyncOpenAI(base_url=f"{edge.base_url}/v1", api_key="sk-any", max_retries=0)
        for edge in edges
    ]
    try:
        fake.state.hold()
        first = asyncio.create_task(embed(clients[0]))
        await until(lambda: fake.state.held == 1, "A's call upstream, held there")
        second = asyncio.create_task(embed(clients[1]))
        await until(lambda: waiting_on_redis(b) == 1, "B's call waiting for A's flight")
        fake.state.release()
        (miss, miss_vector), (hit, hit_vector) = await asyncio.gather(first, second)
    finally:
        for client in clients:
            await client.close()
    assert (miss["x-switchboard-cache"], hit["x-switchboard-cache"]) == ("miss", "hit")
    assert hit["x-switchboard-attempts"] == "0" and "age" in hit
    assert hit_vector == miss_vector
    assert len(fake.state.calls()) == 1


async def embed(client: openai.AsyncOpenAI) -> tuple[dict[str, str], list[float]]:
    """One embeddings call: its response headers and its vector."""
    raw = await client.embeddings.with_raw_response.create(model="a", input=["backfill"])
    return dict(raw.headers), raw.parse().data[0].embedding
