"""A call that waits in arrival order for its key (every key at its limit) waits on the
router's clock, as every other timeout does: under a ManualClock it ends when the test moves
the clock past `queue_timeout_s`. It waited that long in real time instead, whatever the
clock said (a test's refusal took the full queue timeout of wall-clock time)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from clients import details_from_rpc_error
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.helpers import advance_until_done, eventually
from tests.router_service.server.test_key_pools import ask, one_provider

pytestmark = pytest.mark.timeout(30)


async def test_a_call_queued_for_its_key_waits_on_the_routers_clock(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock(1_800_000_000.0)  # the start of a minute
    began = clock.monotonic()
    keys = [{"key": "k1", "rpm": 1}]
    router = await start_router(one_provider(fake.base_url, keys, queue_timeout_s=50), clock=clock)
    await router.stub.Chat(ask(), timeout=10)  # the key's one call this minute
    late = asyncio.ensure_future(router.stub.Chat(ask(), timeout=120))
    pool = router.runtime.pools["alpha"]

    async def queued() -> bool:
        return pool.waiting == 1

    await eventually(queued, what="the second call waiting for k1's rpm")
    # 5 s a step: the queue's 50 s end within the minute, the key's rpm still spent.
    await advance_until_done(clock, 5.0, late, what="the queued call refused")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await late
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details_from_rpc_error(caught.value).reason == "NO_CAPACITY"
    assert clock.monotonic() - began >= 50.0  # not before the queue's end on its clock
    assert fake.state.count() == 1
