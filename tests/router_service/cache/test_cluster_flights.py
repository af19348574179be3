"""`coalesce: cluster` (cache/_cluster.py) between two "replicas" in one process: two response
caches on one memory store, each with its own flights, as two routers on one Redis (the
Redis run is tests/replicas/test_cluster_flights.py). The misses of replica B wait for A's
flight and are served its answer; a leader that fails or leaves lets them ask themselves; a
lease nobody lands ends their wait; a follower that leaves stops only its own wait."""

from __future__ import annotations

import asyncio

import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.cache import ResponseCache, SlotRenewal
from router_service.cache._keys import cache_key, document_name
from router_service.clock import ManualClock
from router_service.config import CacheConfig
from router_service.engine import Afterwork, HoldRenewer, RequestContext
from router_service.state import Landing, MemoryStateStore
from router_service.telemetry.testing import TelemetryCapture
from tests.helpers import eventually
from tests.router_service.auth.helpers import chat
from tests.router_service.cache.helpers import Upstream

HIT, MISS = routing_pb2.CACHE_STATUS_HIT, routing_pb2.CACHE_STATUS_MISS
PARAMS = chat().params


class Pair:
    """Replicas A and B: a response cache each, on one store and clock."""

    def __init__(self, **config: object) -> None:
        self.clock = ManualClock(1_000_000.0)
        self.store = MemoryStateStore(self.clock)
        settings = CacheConfig.model_validate({"enabled": True, "coalesce": "cluster", **config})
        self.a, self.b = (
            ResponseCache(
                self.store,
                self.clock,
                settings,
                Afterwork(self.store),
                models=frozenset({"chain"}),
                slots=SlotRenewal(HoldRenewer(self.clock, together=False), 30.0),
            )
            for _ in range(2)
        )

    async def watching(self, count: int) -> None:
        """Until `count` misses wait on the store for another replica's flight."""

        async def waiting() -> bool:
            return self.store.flight_board.watching == count

        await eventually(waiting, what=f"{count} follower(s) waiting on the store")

    def settled(self) -> bool:
        """Nothing left: no lease, no watch, no flight of either replica."""
        flights = self.a.flights.open + self.b.flights.open
        return (self.store.flights.held, self.store.flight_board.watching, flights) == (0, 0, 0)


async def ask(
    cache: ResponseCache, upstream: Upstream, deadline_s: float | None = None
) -> tuple[pb.ChatResponse, int]:
    clock = cache._clock
    deadline = None if deadline_s is None else clock.monotonic() + deadline_s
    lookup = cache.lookup("chat", RequestContext("chain", clock, deadline=deadline), PARAMS)
    assert lookup is not None
    response = await lookup.answer(upstream.call())
    return response, lookup.status


async def test_the_misses_of_another_replica_wait_for_the_leaders_answer() -> None:
    pair, upstream = Pair(), Upstream()
    with TelemetryCapture(tracing=False) as captured:
        leader = asyncio.create_task(ask(pair.a, upstream))
        await upstream.started.wait()
        followers = [asyncio.create_task(ask(pair.b, upstream)) for _ in range(3)]
        await pair.watching(1)  # B's first miss waits on the store; B's others wait on it
        assert pair.b.flights.open == 1 and not any(f.done() for f in followers)
        upstream.go.set()
        (first, first_status), *rest = await asyncio.gather(leader, *followers)
        waits = {
            labels["landing"]: point.value
            for labels, point in captured.points("switchboard.cache.cluster_waits")
        }
    assert waits == {"kept": 1}  # operators see it: B's one wait on the store, served
    assert upstream.calls == 1
    assert first_status == MISS
    for response, status in rest:
        assert status == HIT and response.route.cache == HIT
        assert response.completion == first.completion
    assert pair.b.cluster is not None and pair.b.cluster.heard == {Landing.KEPT: 1}
    assert pair.settled()


@pytest.mark.parametrize("ending", ["fails", "leaves"])
async def test_a_leader_that_fails_or_leaves_lets_the_other_replica_ask(ending: str) -> None:
    pair, upstream, own = Pair(), Upstream(), Upstream()  # `own`: what B asks, if it does
    own.go.set()
    leader = asyncio.create_task(ask(pair.a, upstream))
    await upstream.started.wait()
    follower = asyncio.create_task(ask(pair.b, own))
    await pair.watching(1)
    if ending == "fails":
        upstream.fails = True
        upstream.go.set()
        with pytest.raises(RuntimeError):
            await leader
    else:
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leader
    response, status = await follower  # asked upstream itself
    assert (status, upstream.calls, own.calls) == (MISS, 1, 1)
    assert response.completion.choices[0].message.text == "answer 1"
    assert pair.b.cluster is not None and pair.b.cluster.heard == {Landing.EMPTY: 1}
    assert pair.settled()


async def test_a_lease_nobody_lands_ends_the_wait() -> None:
    """A replica that took the flight and died: the follower waits what its lease has left (on
    the store's clock, moved past it here), then asks upstream itself."""
    pair, upstream = Pair(flight_lease_s=30), Upstream()
    generation = await pair.a.generation("chain")
    name = document_name("", cache_key("chat", "", PARAMS, generation))
    dead = await pair.store.claim_flight(name, 30)
    assert dead.token
    upstream.go.set()
    asking = asyncio.ensure_future(ask(pair.b, upstream))

    async def timed() -> bool:  # the follower's wait, what the lease has left
        return any(w.when() == pair.clock.monotonic() + 30 for w in pair.clock.windows)

    await eventually(timed, what="the follower waiting for the dead replica's flight")
    pair.clock.advance(30)
    _, status = await asyncio.wait_for(asking, 15)
    assert (status, upstream.calls) == (MISS, 1)
    assert pair.b.cluster is not None and pair.b.cluster.heard == {Landing.LAPSED: 1}
    assert pair.store.flight_board.watching == 0


async def test_a_follower_that_leaves_stops_only_its_own_wait() -> None:
    pair, upstream = Pair(), Upstream()
    leader = asyncio.create_task(ask(pair.a, upstream))
    await upstream.started.wait()
    leaving = asyncio.create_task(ask(pair.b, upstream))
    await pair.watching(1)
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert pair.store.flight_board.watching == 0 and pair.b.flights.open == 0
    staying = asyncio.create_task(ask(pair.b, upstream))
    await pair.watching(1)
    upstream.go.set()
    (_, lead_status), (_, status) = await asyncio.gather(leader, staying)
    assert (lead_status, status, upstream.calls) == (MISS, HIT, 1)
    assert pair.settled()


async def test_a_lease_lasts_no_longer_than_its_calls_deadline() -> None:
    pair, upstream = Pair(flight_lease_s=30), Upstream()
    leader = asyncio.create_task(ask(pair.a, upstream, deadline_s=5))
    await upstream.started.wait()
    generation = await pair.a.generation("chain")
    name = document_name("", cache_key("chat", "", PARAMS, generation))
    held = await pair.store.claim_flight(name, 30)
    assert held.token is None and held.left_s == 5.0
    upstream.go.set()
    await leader
    assert pair.settled()


async def test_the_default_is_each_replica_alone() -> None:
    pair, upstream = Pair(coalesce="replica"), Upstream()
    assert pair.a.cluster is None
    leader = asyncio.create_task(ask(pair.a, upstream))
    await upstream.started.wait()
    other = asyncio.create_task(ask(pair.b, upstream))

    async def both_upstream() -> bool:
        return upstream.calls == 2

    await eventually(both_upstream, what="B's own upstream call, not a wait for A's")
    upstream.go.set()
    statuses = [status for _, status in await asyncio.gather(leader, other)]
    assert (statuses, upstream.calls) == ([MISS, MISS], 2)
