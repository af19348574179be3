"""Identical misses together make one upstream call (cache/_flights.py): the followers of a
replica wait for the leader's answer; a leader that fails or leaves lets them ask themselves;
a follower that leaves does not stop the leader. Driven step by step with events; one test
over gRPC with a slow upstream."""

from __future__ import annotations

import asyncio

import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.cache import ResponseCache, SlotRenewal
from router_service.clock import ManualClock
from router_service.config import CacheConfig
from router_service.engine import Afterwork, HoldRenewer, RequestContext
from router_service.fake_upstream import FakeUpstream
from router_service.state import MemoryStateStore
from tests.conftest import StartRouter, base_config
from tests.helpers import eventually
from tests.router_service.auth.helpers import chat
from tests.router_service.cache.helpers import Upstream

HIT, MISS = routing_pb2.CACHE_STATUS_HIT, routing_pb2.CACHE_STATUS_MISS
PARAMS = chat().params


def response_cache() -> ResponseCache:
    clock = ManualClock(1_000_000.0)
    store = MemoryStateStore(clock)
    return ResponseCache(
        store,
        clock,
        CacheConfig(enabled=True),
        Afterwork(store),
        models=frozenset({"chain"}),
        slots=SlotRenewal(HoldRenewer(clock, together=False), 30.0),
    )


async def ask(cache: ResponseCache, upstream: Upstream) -> tuple[pb.ChatResponse, int]:
    lookup = cache.lookup("chat", RequestContext("chain", cache._clock), PARAMS)
    assert lookup is not None
    response = await lookup.answer(upstream.call())
    return response, lookup.status


async def waiting_followers(task_count: int) -> None:
    # Each follower needs a few loop turns to read the store and join the flight.
    for _ in range(10 * task_count):
        await asyncio.sleep(0)


async def test_followers_get_the_leaders_answer() -> None:
    cache, upstream = response_cache(), Upstream()
    leader = asyncio.create_task(ask(cache, upstream))
    await upstream.started.wait()
    followers = [asyncio.create_task(ask(cache, upstream)) for _ in range(3)]
    await waiting_followers(3)
    assert cache.flights.open == 1 and not any(f.done() for f in followers)
    upstream.go.set()
    (first, first_status), *rest = await asyncio.gather(leader, *followers)
    assert upstream.calls == 1
    assert first_status == MISS and first.route.cache == MISS
    for response, status in rest:
        assert status == HIT and response.route.cache == HIT
        assert response.completion == first.completion
    assert len({id(r) for r, _ in rest}) == 3  # each follower its own copy
    assert cache.flights.open == 0


async def test_a_failed_leader_lets_the_followers_ask_themselves() -> None:
    cache, upstream = response_cache(), Upstream()
    upstream.fails = True
    leader = asyncio.create_task(ask(cache, upstream))
    await upstream.started.wait()
    follower = asyncio.create_task(ask(cache, upstream))
    await waiting_followers(1)
    upstream.go.set()
    with pytest.raises(RuntimeError):
        await leader
    upstream.fails = False
    response, status = await follower  # asked upstream itself
    assert (status, upstream.calls) == (MISS, 2)
    assert response.completion.choices[0].message.text == "answer 2"
    assert cache.flights.open == 0


async def test_a_leader_whose_caller_leaves_lands_with_nothing() -> None:
    cache, upstream = response_cache(), Upstream()
    leader = asyncio.create_task(ask(cache, upstream))
    await upstream.started.wait()
    follower = asyncio.create_task(ask(cache, upstream))
    await waiting_followers(1)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    upstream.go.set()
    _, status = await follower
    assert (status, upstream.calls) == (MISS, 2)
    assert cache.flights.open == 0


async def test_a_follower_that_leaves_does_not_stop_the_leader() -> None:
    cache, upstream = response_cache(), Upstream()
    leader = asyncio.create_task(ask(cache, upstream))
    await upstream.started.wait()
    leaving, staying = (asyncio.create_task(ask(cache, upstream)) for _ in range(2))
    await waiting_followers(2)
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    upstream.go.set()
    (_, lead_status), (_, status) = await asyncio.gather(leader, staying)
    assert (lead_status, status, upstream.calls) == (MISS, HIT, 1)


async def test_concurrent_identical_calls_make_one_upstream_call(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(base_config(fake.base_url, cache={"enabled": True}))
    # The first is held upstream until the four others follow its flight (with a latency, a
    # loaded machine could send them after it landed: cache hits, the flight untested).
    fake.state.hold()
    calls = asyncio.gather(*(router.stub.Chat(chat()) for _ in range(5)))
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the first call upstream")

    async def four_following() -> bool:  # polled: following a flight is no event to wait on
        return router.runtime.cache.flights.following == 4

    await eventually(four_following, what="the other four on the first's flight")
    fake.state.release()
    answers = await calls
    assert len(fake.state.calls()) == 1
    assert sorted(a.route.cache for a in answers) == sorted([MISS, HIT, HIT, HIT, HIT])
    assert len({a.completion.SerializeToString() for a in answers}) == 1
