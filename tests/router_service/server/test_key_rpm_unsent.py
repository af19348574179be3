"""A call its key was leased for but that was never made counts in none of the key's rate
windows: here, the caller's deadline passed while it waited for the key's slot."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.helpers import eventually
from tests.router_service.server.test_key_pools import ask, one_provider

pytestmark = pytest.mark.timeout(30)


async def test_a_call_whose_deadline_passed_before_it_was_sent_spends_none_of_the_keys_rpm(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    keys = [{"key": "k1", "max_in_flight": 1, "rpm": 2}]
    router = await start_router(one_provider(fake.base_url, keys, queue_timeout_s=30), clock=clock)
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
    clock.advance(25.0)  # its deadline passes (the router's clock) while it waits
    stream.cancel()  # the slot frees: leased, but no call goes out for it
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await late
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert fake.state.count() == 1

    fake.state.set_scenario(Scenario())
    # The key's second call this minute: served at once (not queued until the rpm has room).
    answer = await router.stub.Chat(ask(), timeout=5)
    assert answer.completion.choices[0].message.text == "Echo: hi"
