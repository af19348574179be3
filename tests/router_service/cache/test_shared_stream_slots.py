"""Every caller sharing one upstream stream (the response cache's stream flights) holds its own
stream slot (`max_concurrent_streams`, taken for `server.lease_ttl_s`): each is renewed while its
caller reads, past that TTL, and given back when it leaves, the first caller's (which started the
upstream call) as well as the others'."""

from __future__ import annotations

import logging

import grpc
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.state import MemoryStateStore
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.helpers import eventually
from tests.router_service.auth.helpers import bearer, client
from tests.router_service.engine.test_stream_holds import RenewerClock, gone_after_a_period
from tests.router_service.server.test_leases import request

pytestmark = pytest.mark.timeout(30)

KEY = "sk-sharing-client-1"
STREAMS = "client:app:streams"
PERIOD_S = 10.0  # a third of the slots' TTL


async def sharing(
    fake: FakeUpstream, start_router: StartRouter
) -> tuple[RouterHandle, MemoryStateStore, RenewerClock, list[grpc.aio.UnaryStreamCall]]:
    """A router with the cache on, and two identical streams of one client (two slots) reading
    one held upstream stream: the first leads it, the second follows."""
    clock = RenewerClock()
    store = MemoryStateStore(clock)
    config = base_config(
        fake.base_url,
        server={"port": 0, "lease_ttl_s": 3 * PERIOD_S},
        cache={"enabled": True},
        auth={"clients": [client("app", KEY, max_concurrent_streams=2)]},
    )
    config["providers"]["alpha"]["timeouts"] = {"stall_s": 3600}  # a long, quiet reasoning
    router = await start_router(config, clock=clock, store=store)
    fake.state.set_scenario(Scenario(chunks=20, held_after_chunks=2))
    calls = []
    for _ in range(2):
        call = router.stub.ChatStream(pb.ChatStreamRequest(params=request()), metadata=bearer(KEY))
        async for event in call:
            if event.HasField("chunk"):
                break
        calls.append(call)
    assert len(fake.state.calls()) == 1  # one upstream stream, shared
    return router, store, clock, calls


async def held(store: MemoryStateStore, slots: int) -> None:
    async def settled() -> bool:
        return await store.held([STREAMS]) == [slots]

    await eventually(settled, what=f"{slots} stream slots held")


async def test_the_callers_sharing_a_long_stream_keep_their_slots_the_first_one_leaving(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    router, store, clock, (first, second) = await sharing(fake, start_router)
    await clock.pass_periods(9, PERIOD_S)  # 90 s: three times the slots' TTL
    assert await store.held([STREAMS]) == [2]  # the follower's slot too
    first.cancel()  # the caller that started the upstream call leaves; the stream goes on
    await held(store, 1)
    caplog.clear()
    await clock.pass_periods(6, PERIOD_S)
    assert await store.held([STREAMS]) == [1]  # the follower's, still renewed
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # no false alarm
    fake.state.release()
    assert [event async for event in second][-1].HasField("summary")
    await held(store, 0)
    await gone_after_a_period(clock, PERIOD_S)
    assert router.runtime.cache.stream_flights.open == 0


async def test_a_follower_leaving_a_shared_stream_gives_its_slot_back(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router, store, clock, (first, second) = await sharing(fake, start_router)
    await clock.pass_periods(6, PERIOD_S)  # 60 s: renewed past twice its TTL
    assert await store.held([STREAMS]) == [2]
    second.cancel()
    await held(store, 1)  # at once, not at its renewed TTL
    await clock.pass_periods(6, PERIOD_S)
    assert await store.held([STREAMS]) == [1]  # the leader's, still renewed
    fake.state.release()
    assert [event async for event in first][-1].HasField("summary")
    await held(store, 0)
    await gone_after_a_period(clock, PERIOD_S)  # nothing renews the follower's slot again
    assert router.runtime.cache.stream_flights.open == 0
