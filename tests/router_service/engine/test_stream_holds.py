"""What an open stream holds outlives the TTLs those holds carry (`server.lease_ttl_s`,
`sessions.active_ttl_s`): its key lease and its session's active mark are renewed while it runs
(a long reasoning answer), and given back when it ends."""

from __future__ import annotations

import asyncio

import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.state import MemoryStateStore
from tests.conftest import StartRouter, base_config
from tests.helpers import eventually
from tests.router_service.server.test_leases import request

pytestmark = pytest.mark.timeout(30)

RENEWER = "switchboard-stream-renew"


class CountingRenewals(MemoryStateStore):
    """The memory store, counting the key lease renewals that reached it."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.renewals = 0

    async def renew(self, resource: str, lease_id: str, ttl_s: float) -> bool:
        self.renewals += 1
        return await super().renew(resource, lease_id, ttl_s)


def renewers() -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == RENEWER]


async def test_a_stream_longer_than_its_ttls_keeps_its_key_and_session_mark(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    store = CountingRenewals(clock)
    config = base_config(
        fake.base_url,
        server={"port": 0, "lease_ttl_s": 60},
        sessions={"active_ttl_s": 30},  # the shorter TTL sets the pace: a renewal every 10 s
    )
    config["providers"]["alpha"].update(
        keys=["sk-alpha-1"], max_sessions=1, thread_protection="provider-ban"
    )
    config["providers"]["alpha"]["timeouts"] = {"stall_s": 3600}  # a long, quiet reasoning
    router = await start_router(config, clock=clock, store=store)
    pool = router.runtime.pools["alpha"]
    sessions = router.runtime.sessions
    slot = pool.slot_name(pool.keys[0])
    fake.state.set_scenario(Scenario(chunks=20, held_after_chunks=2))
    routing = routing_pb2.RoutingOptions(session_id="long")
    call = router.stub.ChatStream(pb.ChatStreamRequest(params=request(), routing=routing))
    async for event in call:
        if event.HasField("chunk"):
            break
    for period in range(1, 10):  # 90 s: three times the marks' TTL
        clock.advance(10)

        async def renewed(done: int = period) -> bool:
            return store.renewals >= done

        await eventually(renewed, what=f"renewal {period}")
    assert await store.held([slot]) == [1]  # the key's limits still count the stream
    assert list((await sessions.active("alpha")).values()) == [1]  # so does its session limit
    fake.state.release()
    events = [event async for event in call]
    assert events[-1].HasField("summary")

    async def ended() -> bool:
        await router.runtime.afterwork.drain()
        held = await store.held([slot])
        return not renewers() and held == [0] and not await sessions.active("alpha")

    await eventually(ended, what="the renewals stopped, the lease and the mark given back")
