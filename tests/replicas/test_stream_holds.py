"""A stream longer than the TTLs of what it holds, on replicas sharing one real Redis: the key's
slot and the session's mark it renews still count on every replica (engine/_stream_holds.py)."""

from __future__ import annotations

import time

import grpc
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.sessions import session_key
from tests.conftest import StartRouter
from tests.replicas.harness import ask, replica_config
from tests.replicas.test_replicas import active_on
from tests.router_service.engine.test_stream_holds import RenewerClock

pytestmark = pytest.mark.timeout(30)


async def test_a_long_stream_keeps_its_key_and_session_on_every_replica(
    fake: FakeUpstream,
    start_router: StartRouter,
    redis_url: str,
    redis_prefix: str,
) -> None:
    config = replica_config(fake.base_url, redis_url, redis_prefix)
    config["server"].update(lease_ttl_s=30)
    config["providers"]["alpha"].update(
        keys=[{"key": "k1", "max_in_flight": 1}],
        queue_timeout_s=0,
        thread_protection="provider-ban",
        max_sessions=1,
        timeouts={"stall_s": 3600},  # a long, quiet reasoning
    )
    clock = RenewerClock(time.time())
    a, b = await start_router(config, clock=clock), await start_router(config, clock=clock)
    fake.state.set_scenario(Scenario(chunks=20, held_after_chunks=2))
    call = a.stub.ChatStream(
        pb.ChatStreamRequest(params=ask().params, routing=ask(session="s1").routing)
    )
    async for event in call:
        if event.HasField("chunk"):
            break
    await clock.pass_periods(9, 10.0)  # 90 s: three times the TTLs
    assert await b.leases_held() == 1
    assert await active_on(b, "alpha") == {session_key("", "s1"): 1}
    with pytest.raises(grpc.aio.AioRpcError) as refused:  # B's caller finds k1 taken
        await b.stub.Chat(ask())
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    fake.state.release()
    assert [event async for event in call][-1].HasField("summary")
    await a.runtime.afterwork.drain()
    assert await b.leases_held() == 0 and await active_on(b, "alpha") == {}
