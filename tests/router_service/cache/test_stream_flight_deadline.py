"""A streaming call with a deadline that follows an identical stream's flight
(cache/_stream_flights.py) whose own call has none: it read the shared stream past its own
deadline, as long as the leader's stream took. It stops at its deadline (DEADLINE_EXCEEDED),
before its first chunk or after some, on the router's clock; the shared stream goes on for the
leader and the other followers, and the follower leaves nothing behind (its reader, its slot)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.state import MemoryStateStore
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.router_service.auth.helpers import bearer, chat_stream, client
from tests.router_service.cache.test_response_cache import streamed_text
from tests.router_service.cache.test_shared_stream_slots import held
from tests.router_service.cache.test_stream_flights import events, flying, statuses

pytestmark = pytest.mark.timeout(30)
HIT, MISS = routing_pb2.CACHE_STATUS_HIT, routing_pb2.CACHE_STATUS_MISS
KEY = "sk-stream-deadline-1"


async def patient_router(
    fake: FakeUpstream,
    start_router: StartRouter,
    clock: ManualClock,
    store: MemoryStateStore,
    **config: Any,
) -> RouterHandle:
    """The cache on, and the leader's upstream stream outlasting any follower's deadline."""
    settings = base_config(fake.base_url, cache={"enabled": True}, **config)
    for provider in settings["providers"].values():
        provider["timeouts"] = {"first_chunk_s": 1000, "total_s": 1000, "stall_s": 1000}
    return await start_router(settings, clock=clock, store=store)


async def test_a_stream_follower_gives_up_at_its_deadline_before_its_first_chunk(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    router = await patient_router(fake, start_router, clock, MemoryStateStore(clock))
    fake.state.hold()
    leader = asyncio.create_task(events(router, chat_stream()))  # no deadline
    flight = await flying(router, fake)
    hurried = asyncio.create_task(_read(router, chat_stream(), timeout=60))
    patient = asyncio.create_task(events(router, chat_stream()))
    await flight.wait_until(lambda f: f.followers == 2)
    clock.advance(61)  # past the hurried one's deadline (on the router's clock)
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await asyncio.wait_for(hurried, 10)  # it read on, as long as the leader's stream took
    assert late.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert flight.followers == 1 and router.runtime.cache.stream_flights.open == 1  # flies on
    fake.state.release()
    first, other = await asyncio.gather(leader, patient)
    assert statuses(first) == (MISS, MISS) and statuses(other) == (HIT, HIT)
    assert streamed_text(other) == streamed_text(first) != ""
    assert len(fake.state.calls()) == 1
    assert router.runtime.cache.stream_flights.open == 0


async def _read(
    router: RouterHandle, request: pb.ChatStreamRequest, **call: Any
) -> list[pb.ChatStreamResponse]:
    return [event async for event in router.stub.ChatStream(request, **call)]


async def test_a_stream_follower_gives_up_at_its_deadline_mid_stream_and_frees_its_slot(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    store = MemoryStateStore(clock)
    router = await patient_router(
        fake,
        start_router,
        clock,
        store,
        server={"port": 0, "lease_ttl_s": 3600},
        auth={"clients": [client("app", KEY, max_concurrent_streams=2)]},
    )
    fake.state.set_scenario(Scenario(chunks=20, held_after_chunks=2))
    calls = []
    for deadline in (None, 60):  # the leader (none), then the follower
        call = router.stub.ChatStream(chat_stream(), metadata=bearer(KEY), timeout=deadline)
        async for event in call:
            if event.HasField("chunk"):
                break
        calls.append(call)
    leader, hurried = calls
    assert len(fake.state.calls()) == 1  # one upstream stream, shared
    await held(store, 2)
    clock.advance(61)  # past the follower's deadline, its stream held after two chunks
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await asyncio.wait_for(_rest(hurried), 10)
    assert late.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    await held(store, 1)  # the follower's slot given back, the leader's kept
    fake.state.release()
    assert (await _rest(leader))[-1].HasField("summary")  # the shared stream went on
    await held(store, 0)
    assert router.runtime.cache.stream_flights.open == 0


async def _rest(call: Any) -> list[pb.ChatStreamResponse]:
    return [event async for event in call]
