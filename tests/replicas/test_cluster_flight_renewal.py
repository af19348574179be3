"""`cache.coalesce: cluster` with short leases renewed by their leaders (`flight_lease_s`), on two
router replicas sharing one real Redis, time on one ManualClock: a leader slower than any lease
(and than the old `flight_ttl_s` of 30 s) keeps the other replica's miss waiting for its answer
(one upstream call); a leader whose renewals stop (its task killed: no landing) lets the other
replica go on within one short lease, not after 30 s; a shared stream's leader renews its lease
while it streams. A lease is renewed by the runtime's one renewer of open calls' holds (a
`FlightHold`, no task of the call's own), and its hold ends with its call (kept, or cut)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis

from clients.switchboard.v1 import routing_pb2
from router_service.cache._cluster import ClusterFlights, FlightHold
from router_service.cache._keys import Kind
from router_service.clock import ManualClock
from router_service.engine import Afterwork, HoldRenewer
from router_service.fake_upstream import FakeUpstream
from router_service.state import Landing, RedisStateStore
from tests.conftest import RouterHandle, StartRouter
from tests.replicas.harness import ask, two_replicas
from tests.replicas.redis_fixtures import keys_under
from tests.replicas.test_cluster_flights import (
    cluster_config,
    cluster_heard,
    flight_name,
    settled,
    until,
    waiting_on_redis,
)
from tests.replicas.test_cluster_streams import events, streamed

pytestmark = pytest.mark.timeout(90)
HIT, MISS = routing_pb2.CACHE_STATUS_HIT, routing_pb2.CACHE_STATUS_MISS
LEASE_S = 3.0  # renewed every second
OLD_TTL_S = 30.0  # what a lease lasted before renewals (and a dead leader held the others)


def flight_holds(replica: RouterHandle) -> list[FlightHold]:
    """The flight leases the replica's one renewer holds (and never a renewal task of a
    call's own, as before FlightHold)."""
    assert [t for t in asyncio.all_tasks() if t.get_name() == "switchboard-flight-renewal"] == []
    return [h for h in replica.runtime.runner.renewer._holds if isinstance(h, FlightHold)]


def cluster(replica: RouterHandle) -> ClusterFlights:
    flights = replica.runtime.cache.cluster
    assert flights is not None
    return flights


async def _renewed(clock: ManualClock, flights: ClusterFlights, seconds: int) -> None:
    """Move the clock a second at a time, each renewal of `flights`' leader made before the next
    (a renewal is a Redis round trip: real time, which the clock does not wait for)."""
    for _ in range(seconds):
        done = flights.renewed + 1
        clock.advance(1.0)
        await until(lambda: renewed_and_waiting(flights, done), f"renewal {done}")  # noqa: B023


def renewed_and_waiting(flights: ClusterFlights, renewed: int) -> bool:
    """`renewed` renewals made, and the renewer waiting on the clock for its next round (not
    yet: a clock moved meanwhile would not wake it at its period)."""
    return flights.renewed >= renewed and flights._renewer._waiting


def _silent_on(clock: ManualClock) -> bool:
    """A reader waits out its silence on the clock: a window ending within a lease from now."""
    now = clock.monotonic()
    ends = [w.when() for w in clock.windows]
    return any(end is not None and now < end <= now + LEASE_S for end in ends)


@dataclass(frozen=True)
class DyingLeader:
    """A third replica leading a flight, its renewals those of a router (`leading`), until its
    task is killed: it never lands (its process died)."""

    flights: ClusterFlights
    renewer: HoldRenewer  # the dead replica's own
    task: asyncio.Task[None]

    async def kill(self) -> None:
        self.task.cancel()
        await asyncio.wait([self.task])


@contextlib.asynccontextmanager
async def _dying_leader(
    replica: RouterHandle, clock: ManualClock, redis_url: str, prefix: str, kind: Kind
) -> AsyncIterator[DyingLeader]:
    """A leader of `replica`'s flight of `ask()` (as a `kind` call) on a store of its own."""
    name = await flight_name(replica, kind)
    store = RedisStateStore.from_url(redis_url, prefix=prefix, clock=clock)
    renewer = HoldRenewer(clock, together=True)
    dead = ClusterFlights(store, Afterwork(store), LEASE_S, clock, renewer)
    token = (await store.claim_flight(name, LEASE_S)).token
    assert token

    async def leads_until_killed() -> None:
        async with dead.leading(name, token, None):
            await asyncio.Event().wait()

    leader = DyingLeader(dead, renewer, asyncio.create_task(leads_until_killed()))
    try:
        yield leader
    finally:
        await leader.kill()  # (a test failing before it killed it leaves no task behind)
        await renewer.aclose()
        await store.aclose()


async def test_a_leader_slower_than_its_lease_keeps_the_other_replica_waiting(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    clock = ManualClock(time.time())
    config = cluster_config(fake, redis_url, redis_prefix, flight_lease_s=LEASE_S)
    a, b = await two_replicas(start_router, config, clock)
    fake.state.hold()
    leader = asyncio.ensure_future(a.stub.Chat(ask()))
    await until(lambda: fake.state.held == 1, "A's call upstream, held there")
    follower = asyncio.ensure_future(b.stub.Chat(ask()))
    await until(lambda: waiting_on_redis(b) == 1, "B's miss waiting for A's flight")
    await _renewed(clock, cluster(a), int(OLD_TTL_S) + 10)  # 13 leases, 40 renewals
    assert len(flight_holds(a)) == 1  # renewed by A's renewer of every open call's holds
    assert fake.state.count() == 1 and not follower.done()  # B still waits for A
    assert waiting_on_redis(b) == 1
    fake.state.release()
    first, second = await asyncio.wait_for(asyncio.gather(leader, follower), 15)
    assert (first.route.cache, second.route.cache, len(fake.state.calls())) == (MISS, HIT, 1)
    assert second.completion.SerializeToString() == first.completion.SerializeToString()
    assert cluster_heard(b) == {Landing.KEPT: 1}
    await settled(redis_url, redis_prefix, a, b)
    assert flight_holds(a) == []  # ended with A's call


async def test_a_leader_whose_renewals_stop_lets_the_other_replica_go_on_within_its_lease(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    clock = ManualClock(time.time())
    config = cluster_config(fake, redis_url, redis_prefix, flight_lease_s=LEASE_S)
    a, b = await two_replicas(start_router, config, clock)
    async with _dying_leader(b, clock, redis_url, redis_prefix, "chat") as dead:
        asking = asyncio.ensure_future(b.stub.Chat(ask()))
        await until(lambda: waiting_on_redis(b) == 1, "B's miss waiting for the flight")
        await _renewed(clock, dead.flights, 2 * int(LEASE_S))  # alive: B waits past its lease
        assert fake.state.calls() == [] and not asking.done()
        await dead.kill()
        assert not dead.renewer._holds  # its lease's hold ended with it

    def waits_out_the_lease() -> bool:  # what B last read, after the last renewal: ≤ 3 s
        now, ends = clock.monotonic(), [w.when() for w in clock.windows]
        return any(end is not None and now < end <= now + LEASE_S for end in ends)

    await until(waits_out_the_lease, "B waiting for what the unrenewed lease has left")
    clock.advance(LEASE_S)  # one short lease, not the 30 s a lease held before
    answer = await asyncio.wait_for(asking, 15)
    assert answer.route.cache == MISS and len(fake.state.calls()) == 1
    assert cluster_heard(b) == {Landing.LAPSED: 1}
    await settled(redis_url, redis_prefix, a, b)  # B led the next flight and landed it
    assert flight_holds(b) == []


async def test_a_streams_leader_renews_its_lease_until_its_stream_is_cut(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    clock = ManualClock(time.time())
    config = cluster_config(fake, redis_url, redis_prefix, flight_lease_s=LEASE_S)
    a, b = await two_replicas(start_router, config, clock)
    fake.state.hold()
    leader = asyncio.create_task(events(a, streamed()))
    await until(lambda: fake.state.held == 1, "A's stream upstream, held there")
    claimed_at = clock.now()
    await _renewed(clock, cluster(a), 2 * int(LEASE_S))
    (key,) = [key for key in keys_under(redis_url, redis_prefix) if ":flt:" in key]
    direct = redis.Redis.from_url(redis_url)
    try:
        held = direct.get(key)
        assert isinstance(held, bytes)
        expiry = float(held.decode().partition("|")[0])
    finally:
        direct.close()
    assert expiry == pytest.approx(clock.now() + LEASE_S)  # not claimed_at + 3: renewed
    assert claimed_at + LEASE_S < clock.now()
    assert len(flight_holds(a)) == 1
    leader.cancel()  # its only caller left: the stream is cut, its pump cancelled
    await until(lambda: not flight_holds(a), "A's renewals ended")
    fake.state.release()
    await settled(redis_url, redis_prefix, a, b)  # its lease landed (EMPTY)
    assert a.runtime.cache.stream_flights.open == 0


async def test_a_stream_reading_a_leader_whose_renewals_stop_goes_on_within_its_lease(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    """B's stream reads the flight log of a leader that renews its lease but never writes (its
    upstream is slow), then dies: B goes on once the lease ran out unrenewed (its check after
    each lease of silence, timed on the router's clock), not after `flight_ttl_s` of silence."""
    clock = ManualClock(time.time())
    config = cluster_config(
        fake, redis_url, redis_prefix, flight_lease_s=LEASE_S, flight_ttl_s=3600
    )
    a, b = await two_replicas(start_router, config, clock)
    async with _dying_leader(b, clock, redis_url, redis_prefix, "stream") as dead:
        asking = asyncio.create_task(events(b, streamed()))
        await until(lambda: waiting_on_redis(b) == 1, "B's stream reading the flight's log")
        await _renewed(clock, dead.flights, 2 * int(LEASE_S))  # alive: B reads past its lease
        assert fake.state.calls() == [] and not asking.done()
        await dead.kill()
        assert not dead.renewer._holds  # its lease's hold ended with it
    # B's silence is timed on the router's clock (no real second passes): the lease, last
    # renewed now, runs out in one lease; B finds it at its next check, within one lease more.
    dead_at = clock.monotonic()
    await until(lambda: _silent_on(clock), "B waiting out its silence on the router's clock")
    while not asking.done():
        assert clock.monotonic() < dead_at + 2 * LEASE_S, "B still reads a dead leader's log"
        clock.advance(LEASE_S / 3)
        await until(lambda: asking.done() or _silent_on(clock), "B's next check, or its end")
    stream = await asyncio.wait_for(asking, 15)
    assert [e.route.cache for e in stream if e.WhichOneof("event") == "route"] == [MISS]
    assert len(fake.state.calls()) == 1  # asked upstream itself: nothing reached it yet
    assert cluster_heard(b) == {Landing.LAPSED: 1}
    for replica in (a, b):  # nothing of theirs left (the dead one's key: Redis's TTL drops it)
        await replica.runtime.afterwork.drain()
        assert waiting_on_redis(replica) == 0 and replica.runtime.cache.stream_flights.open == 0
        assert flight_holds(replica) == []
