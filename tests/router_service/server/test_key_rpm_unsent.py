"""A call its key was leased for but that was never made counts in none of the key's rate
windows: a Chat whose caller's deadline passed while it waited for the key's slot, a PickRoute
whose caller left before its route went out; a give-back that fails is logged, never told."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.state import MemoryStateStore, SlotGrant, SlotRequest
from tests.conftest import StartRouter, base_config
from tests.helpers import eventually
from tests.release_failures import FAILED, FailingGiveBacks, logged_once
from tests.replicas.harness import replica_config
from tests.replicas.redis_fixtures import RedisProxy, redis_prefix, redis_proxy, redis_url
from tests.router_service.engine.test_route_leases import SlowMarks
from tests.router_service.server.test_file_upload_cut import cut_short
from tests.router_service.server.test_key_pools import ask, one_provider
from tests.router_service.server.test_routing import AS_SERVICE, with_route_client

__all__ = ["redis_prefix", "redis_proxy", "redis_url"]  # fixtures
pytestmark = pytest.mark.timeout(30)


class GatedAcquires(MemoryStateStore):
    """Memory state whose slot acquires, once `armed`, wait for `gate` (as a Redis round trip
    waits for its reply); `entering` is set when one does."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.armed = False
        self.gate, self.entering = asyncio.Event(), asyncio.Event()

    async def acquire(self, request: SlotRequest) -> SlotGrant:
        if self.armed:
            self.entering.set()
            await self.gate.wait()
        return await super().acquire(request)


async def test_a_call_whose_deadline_passed_before_it_was_sent_spends_none_of_the_keys_rpm(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    store = GatedAcquires(clock)
    keys = [{"key": "k1", "max_in_flight": 1, "rpm": 2}]
    config = one_provider(fake.base_url, keys, queue_timeout_s=30)
    router = await start_router(config, clock=clock, store=store)
    fake.state.set_scenario(Scenario(held_after_chunks=2))
    stream = router.stub.ChatStream(pb.ChatStreamRequest(params=ask().params))
    async for event in stream:
        if event.HasField("chunk"):
            break  # k1's one slot, and one of its two calls a minute
    late = asyncio.ensure_future(router.stub.Chat(ask(), timeout=20))
    pool = router.runtime.pools["alpha"]

    async def queued() -> bool:
        return pool.waiting == 1

    await eventually(queued, what="the second call waiting for k1's slot")
    store.armed = True
    stream.cancel()  # the slot frees: the waiter leases it ...
    await store.entering.wait()
    clock.advance(25.0)  # ... while its deadline passes (the router's clock): no call goes out
    store.gate.set()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await late
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert fake.state.count() == 1

    fake.state.set_scenario(Scenario())
    # The key's second call this minute: served at once (not queued until the rpm has room).
    answer = await router.stub.Chat(ask(), timeout=5)
    assert answer.completion.choices[0].message.text == "Echo: hi"


@pytest.mark.parametrize("rpc", ["chat", "pick"])
async def test_a_caller_gone_during_the_marks_round_trip_spends_none_of_the_keys_rpm(
    fake: FakeUpstream, start_router: StartRouter, rpc: str
) -> None:
    """Its call was never made (a Chat's attempt, a PickRoute's route that never went out)."""
    keys = [{"key": "k1", "rpm": 1}]
    config = with_route_client(one_provider(fake.base_url, keys, queue_timeout_s=0))
    config["providers"]["alpha"]["thread_protection"] = "provider-ban"  # a shared mark
    clock = ManualClock()
    store = SlowMarks(clock)
    router = await start_router(config, clock=clock, store=store)
    pick = pb.PickRouteRequest(model="a", routing=routing_pb2.RoutingOptions(session_id="s1"))
    chat = pb.ChatRequest(params=ask().params, routing=pick.routing)
    stub = router.stub

    def call() -> Any:
        if rpc == "chat":
            return stub.Chat(chat, metadata=AS_SERVICE)
        return stub.PickRoute(pick, metadata=AS_SERVICE)

    left = call()
    await store.entering.wait()
    left.cancel()  # the caller leaves while its mark is on its way

    async def given_back() -> bool:
        return await router.leases_held() == 0

    await eventually(given_back, what="the left call's key slot given back")
    await call()  # the key's one call this minute
    assert fake.state.count() == (1 if rpc == "chat" else 0)


async def test_a_pick_whose_give_back_fails_on_a_busy_provider_is_routed_to_the_next(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """alpha serves its `max_sessions`: the refused pick's rpm give-back failing (the store
    lost a moment) is logged, as a Chat's is, and the pick goes on to beta, not an error."""
    config = with_route_client(base_config(fake.base_url))
    alpha = config["providers"]["alpha"]
    alpha["thread_protection"] = "provider-ban"  # max_sessions: 1
    alpha["keys"] = [{"key": "sk-alpha-1", "rpm": 5}]
    router = await start_router(config, store=FailingGiveBacks(RuntimeError("store bug")))

    def pick(session: str) -> pb.PickRouteRequest:
        return pb.PickRouteRequest(
            model="chain", routing=routing_pb2.RoutingOptions(session_id=session)
        )

    held = await router.stub.PickRoute(pick("s1"), metadata=AS_SERVICE)
    assert held.deployment == "alpha/model-a"
    with caplog.at_level(logging.WARNING, logger="switchboard.engine"):
        other = await router.stub.PickRoute(pick("s2"), metadata=AS_SERVICE)
    assert other.deployment == "beta/model-b"
    logged_once(caplog, FAILED)


async def test_a_pick_whose_caller_left_while_redis_kept_its_route_spends_none_of_the_keys_rpm(
    redis_proxy: RedisProxy, fake: FakeUpstream, start_router: StartRouter, redis_prefix: str
) -> None:
    """On Redis, its caller gone during its route's record's round trip (the route never went
    out): the key's slot and its one call this minute are given back."""
    config = with_route_client(replica_config(fake.base_url, redis_proxy.url, redis_prefix))
    config["providers"]["alpha"]["keys"] = [{"key": "k1", "rpm": 1}]
    config["state"].update(socket_timeout_s=60.0)  # the late reply is not a timeout
    router = await start_router(config)
    redis_proxy.hold_replies_after(b":route:")  # held where it keeps its route's record
    pick = pb.PickRouteRequest(model="a")
    call = router.stub.PickRoute(pick, metadata=AS_SERVICE)
    picking = asyncio.ensure_future(call)
    await asyncio.wait_for(redis_proxy.held.wait(), 10)
    await cut_short(router, call)
    assert picking.cancelled()
    await redis_proxy.restore()

    async def given_back() -> bool:
        return await router.leases_held() == 0

    await eventually(given_back, what="the left pick's key slot given back")
    picked = await router.stub.PickRoute(pick, metadata=AS_SERVICE)  # the key's one this minute
    assert picked.deployment == "alpha/model-a"
